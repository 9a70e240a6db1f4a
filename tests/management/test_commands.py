import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import override_settings

import django_hooks
from django_hooks.models import Delivery, Endpoint
from django_hooks.testing import drain

pytestmark = pytest.mark.django_db(transaction=True)


def test_hooks_sweep_enqueues_stranded_deliveries(receiver, redis):
    Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {})
    redis.flushdb()
    out = io.StringIO()
    call_command("hooks_sweep", "--grace", "0", stdout=out)
    assert "Enqueued 1 stranded deliveries." in out.getvalue()
    drain()
    assert Delivery.objects.get().status == "succeeded"


def test_hooks_sweep_reports_an_unreachable_redis(receiver):
    Endpoint.objects.create(url=receiver.url())
    with override_settings(RQ_QUEUES={"default": {"URL": "redis://127.0.0.1:9/0"}}):
        django_hooks.send_event("order.paid", {})
        with pytest.raises(CommandError, match="could not reach the queue's Redis"):
            call_command("hooks_sweep", "--grace", "0")
    with pytest.raises(CommandError, match="positive"):
        call_command("hooks_sweep", "--loop", "0")


def test_hooks_reprocess_says_nothing_was_queued_when_redis_is_unreachable():
    from django_hooks.models import InboundWebhook

    call = InboundWebhook.objects.create(
        source="github",
        provider="github",
        webhook_id="d-1",
        status=InboundWebhook.Status.FAILED,
        body=b"{}",
    )
    with override_settings(RQ_QUEUES={"default": {"URL": "redis://127.0.0.1:9/0"}}):
        with pytest.raises(CommandError, match="could not reach the queue's Redis.*hooks_sweep"):
            call_command("hooks_reprocess", str(call.pk))
    call.refresh_from_db()
    assert call.status == InboundWebhook.Status.RECEIVED, "left for the sweep to queue"


def test_hooks_reencrypt_reports_the_count():
    Endpoint.objects.create(url="http://127.0.0.1:9/")
    out = io.StringIO()
    call_command("hooks_reencrypt", stdout=out)
    assert "Re-encrypted the secrets of 1 endpoints." in out.getvalue()


def test_admin_pages_render_without_secrets(client, receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {"id": 1})
    drain()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    delivery = Delivery.objects.get()
    for url in [
        "/admin/django_hooks/endpoint/",
        f"/admin/django_hooks/endpoint/{endpoint.pk}/change/",
        "/admin/django_hooks/event/",
        f"/admin/django_hooks/event/{delivery.event_id}/change/",
        "/admin/django_hooks/delivery/",
        f"/admin/django_hooks/delivery/{delivery.pk}/change/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert endpoint.secret.encode() not in response.content
        assert endpoint.secret.removeprefix("whsec_").encode() not in response.content
