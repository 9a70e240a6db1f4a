"""GitHub over the decorator and DRF, reprocessing and retention of stored calls."""

import datetime as dt
import hashlib
import hmac
import io
import json

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

import django_hooks
from django_hooks.models import Delivery, Endpoint, Event, InboundWebhook
from django_hooks.testing import run_worker
from tests.testapp import views

pytestmark = pytest.mark.django_db(transaction=True)


def github_post(
    client,
    path,
    body=b'{"zen":"Keep it logically awesome."}',
    *,
    secret=views.GITHUB_SECRET,
    event="ping",
    delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958",
):
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        path,
        body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY=delivery,
    )


def test_github_ping_through_the_decorator(client):
    views.calls.clear()
    response = github_post(client, "/hooks/github/")
    assert response.status_code == 200
    assert (views.calls[0].type, views.calls[0].id) == (
        "ping",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )
    assert (
        github_post(client, "/hooks/github/", secret="wrong", delivery="other").status_code == 401
    )
    views.calls.clear()


def test_drf_authentication_verifies_the_signature(client):
    response = github_post(client, "/hooks/api-github/", event="push")
    assert response.status_code == 200 and response.json()["type"] == "push"
    denied = github_post(client, "/hooks/api-github/", secret="wrong")
    assert denied.status_code == 401 and "signature" in json.dumps(denied.json()).lower()


def test_hooks_reprocess_runs_failed_calls_again(client, redis):
    views.calls.clear()
    record = InboundWebhook.objects.create(
        source="shop",
        provider="standard",
        webhook_id="msg_r",
        event_type="order.paid",
        body=b"{}",
        payload={"type": "order.paid"},
        status="failed",
        error="boom",
        handler="tests.testapp.views:standard",
    )
    out = io.StringIO()
    call_command("hooks_reprocess", "--source", "shop", stdout=out)
    assert "Queued 1" in out.getvalue()
    run_worker()
    record.refresh_from_db()
    assert record.status == "processed" and [c.id for c in views.calls] == ["msg_r"]
    views.calls.clear()


def test_hooks_prune_keeps_what_is_recent_or_unfinished():
    old = timezone.now() - dt.timedelta(days=100)
    for status in ("processed", "received"):
        InboundWebhook.objects.create(
            source="s",
            provider="standard",
            webhook_id=status,
            body=b"",
            status=status,
            received_at=old,
        )
    InboundWebhook.objects.create(source="s", provider="standard", webhook_id="new", body=b"")
    Endpoint.objects.create(url="http://127.0.0.1:9/")
    finished, unfinished = django_hooks.send_event("a.b", {}), django_hooks.send_event("a.b", {})
    Event.objects.update(created_at=old)
    Delivery.objects.filter(event=finished).update(status="succeeded")
    out = io.StringIO()
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"]}):
        call_command("hooks_prune", stdout=out)
    assert "Deleted 1 inbound calls and 1 events." in out.getvalue()
    assert set(InboundWebhook.objects.values_list("webhook_id", flat=True)) == {"received", "new"}
    assert list(Event.objects.values_list("pk", flat=True)) == [unfinished.pk]


def test_a_github_call_replayed_under_a_new_delivery_id_runs_once(client):
    views.calls.clear()
    body = b'{"action":"opened"}'
    assert (
        github_post(client, "/hooks/github/", body, event="issues", delivery="a").status_code == 200
    )
    replay = github_post(client, "/hooks/github/", body, event="issues", delivery="b")
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert [call.id for call in views.calls] == ["a"]
    views.calls.clear()


def test_async_settings_receivers_run_in_a_fresh_worker_and_retry_error_answers(client, redis):
    from django_hooks.inbound.views import _build
    from tests.inbound.test_decorator import standard_post

    views.calls.clear()
    inbound = {
        "shop": {
            "provider": "standard",
            "secret": views.SECRET,
            "run_async": True,
            "handler": "tests.testapp.views.answers_500_once",
        }
    }
    with override_settings(DJANGO_HOOKS={"INBOUND": inbound, "RETRY_SCHEDULE": [0]}):
        assert standard_post(client, "/hooks/in/shop/").status_code == 202
        # A worker process has not built the receiver: it must build it from the setting.
        _build.cache_clear()
        run_worker()
    record = InboundWebhook.objects.get()
    assert (record.status, record.attempts) == ("processed", 2)
    assert len(views.calls) == 2
    views.calls.clear()


def test_a_nul_in_a_signed_json_body_is_stored_without_a_parsed_payload(client):
    from tests.inbound.test_decorator import standard_post

    views.calls.clear()
    body = b'{"type":"x","data":{"name":"a\\u0000b"}}'
    assert standard_post(client, "/hooks/standard/", body=body).status_code == 204
    record = InboundWebhook.objects.get()
    assert record.payload is None and bytes(record.body) == body
    assert views.calls[0].payload["data"]["name"] == "a\x00b"
    views.calls.clear()


def test_a_call_whose_handler_died_runs_again_once_its_lease_is_over(client, redis):
    from tests.inbound.test_decorator import standard_post

    views.calls.clear()
    assert standard_post(client, "/hooks/standard/", msg_id="msg_dead").status_code == 204
    # As if the process had died inside the handler: still "received", lease running.
    future = timezone.now() + dt.timedelta(minutes=5)
    InboundWebhook.objects.update(status="received", locked_until=future, processed_at=None)
    again = standard_post(client, "/hooks/standard/", msg_id="msg_dead")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    InboundWebhook.objects.update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert standard_post(client, "/hooks/standard/", msg_id="msg_dead").status_code == 204
    assert [call.id for call in views.calls] == ["msg_dead", "msg_dead"]
    record = InboundWebhook.objects.get()
    assert (record.status, record.attempts, record.locked_until) == ("processed", 2, None)

    # With no sender retry, hooks_sweep finds it and a worker finishes it.
    InboundWebhook.objects.update(
        status="received",
        locked_until=timezone.now() - dt.timedelta(seconds=1),
        received_at=timezone.now() - dt.timedelta(minutes=5),
    )
    out = io.StringIO()
    call_command("hooks_sweep", stdout=out)
    assert "Enqueued 1 unfinished inbound webhooks." in out.getvalue()
    run_worker()
    assert InboundWebhook.objects.get().status == "processed" and len(views.calls) == 3
    views.calls.clear()


def test_only_one_claimant_may_run_a_call():
    record = InboundWebhook.objects.create(
        source="s", provider="standard", webhook_id="c", body=b""
    )
    calls = InboundWebhook.objects.filter(pk=record.pk)
    now = timezone.now()
    assert calls.claim(now) == 1
    assert calls.claim(now) == 0  # held by the first run
    assert calls.claim(now + dt.timedelta(seconds=301)) == 1  # that run is presumed dead
    record.refresh_from_db()
    assert (record.status, record.attempts) == ("received", 2)
    InboundWebhook.objects.filter(pk=record.pk).update(status="processed", locked_until=None)
    assert calls.claim(now + dt.timedelta(hours=1)) == 0


def test_inbound_handlers_run_on_their_own_queue_and_retry_schedule(client, redis):
    """``INBOUND_QUEUE`` and ``INBOUND_RETRY_SCHEDULE`` keep received webhooks apart from
    deliveries; the worker serves both queues."""
    from django.conf import settings

    from django_hooks.internal.queue import get_queue
    from tests.inbound.test_decorator import standard_post

    views.calls.clear()
    queues = {**settings.RQ_QUEUES, "inbound": dict(settings.RQ_QUEUES["default"])}
    hooks = {
        **settings.DJANGO_HOOKS,
        "INBOUND_QUEUE": "inbound",
        "INBOUND_RETRY_SCHEDULE": [3600],
        "RETRY_SCHEDULE": [0],
    }
    with override_settings(RQ_QUEUES=queues, DJANGO_HOOKS=hooks):
        response = standard_post(client, "/hooks/later/", {"fail_times": 1})
        assert response.status_code == 202
        assert (get_queue("inbound").count, get_queue("default").count) == (1, 0)
        run_worker()
        record = InboundWebhook.objects.get()
        assert (record.status, record.attempts) == ("failed", 1)
        # Retried an hour from now (the inbound schedule), not at once (the deliveries').
        scheduled = get_queue("inbound").scheduled_job_registry
        assert len(scheduled) == 1 and len(get_queue("default").scheduled_job_registry) == 0
        (job_id,) = scheduled.get_job_ids()
        at = scheduled.get_scheduled_time(job_id)
        assert 1800 < (at - timezone.now()).total_seconds() <= 3600 * 1.2 + 5  # with jitter
