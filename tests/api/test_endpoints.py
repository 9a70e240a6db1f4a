"""Endpoint management through the API: validation, secrets, test events, retry, recover, stats."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

import django_hooks
from django_hooks.core import signing
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.testing import drain
from tests.api.conftest import API
from tests.receiver import Reply

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {"ALLOWED_NETWORKS": ["127.0.0.0/8"], "RETRY_SCHEDULE": []}


def create(client, **body):
    return client.post(API + "endpoints/", body, format="json")


@pytest.mark.parametrize(
    "body,field,reason",
    [
        ({"url": "http://10.1.2.3/hook"}, "url", "private"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url", "metadata"),
        ({"url": "ftp://127.0.0.1/hook"}, "url", ""),
        ({"url": "not a url"}, "url", "whitespace"),
        (
            {"url": "http://127.0.0.1:9/", "event_types": ["order.*", "order..paid"]},
            "event_types",
            "order..paid",
        ),
        (
            {"url": "http://127.0.0.1:9/", "headers": {"Content-Type": "x"}},
            "headers",
            "cannot be replaced",
        ),
        (
            {"url": "http://127.0.0.1:9/", "headers": {"X-A": "1\r\nX-B: 2"}},
            "headers",
            "line breaks",
        ),
    ],
)
def test_invalid_endpoints_are_400_naming_the_field_and_nothing_is_written(
    as_alice, body, field, reason
):
    with override_settings(DJANGO_HOOKS=SETTINGS):  # 127.0.0.0/8 allowed, nothing else
        response = create(as_alice, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert reason in str(response.json()[field])
    assert not Endpoint.objects.exists()


def test_loopback_is_refused_unless_allowed(as_alice):
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": []}):
        response = create(as_alice, url="http://127.0.0.1:8000/hook")
    assert response.status_code == 400
    assert "loopback" in response.json()["url"][0]


def test_updates_are_validated_too(as_alice):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        pk = create(as_alice, url="http://127.0.0.1:9/").json()["id"]
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": []}):
        response = as_alice.patch(
            API + f"endpoints/{pk}/", {"url": "http://192.168.0.1/"}, format="json"
        )
    assert response.status_code == 400 and "private" in response.json()["url"][0]
    assert Endpoint.objects.get().url == "http://127.0.0.1:9/"


def test_secrets_appear_only_on_reveal_and_rotate(as_alice, alice):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        created = create(as_alice, url="http://127.0.0.1:9/", event_types=["order.*"])
    pk = created.json()["id"]
    endpoint = Endpoint.objects.get()
    secret = endpoint.secret
    for response in (
        created,
        as_alice.get(API + "endpoints/"),
        as_alice.get(API + f"endpoints/{pk}/"),
    ):
        assert secret not in response.content.decode()
        assert endpoint.secret_ciphertext not in response.content.decode()
        assert "secret" not in str(response.json()).replace("secret/", "")
    revealed = as_alice.get(API + f"endpoints/{pk}/secret/")
    assert revealed.json() == {"secret": secret}
    assert revealed["Cache-Control"] == "no-store"


def test_rotating_keeps_the_old_secret_signing_for_the_grace_period(as_alice):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        pk = create(as_alice, url="http://127.0.0.1:9/").json()["id"]
    old = Endpoint.objects.get().secret
    response = as_alice.post(
        API + f"endpoints/{pk}/rotate-secret/", {"grace_period": 3600}, format="json"
    )
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != old and new.startswith("whsec_")
    signing.decode_secret(new)
    expires = dt.datetime.fromisoformat(response.json()["previous_expires_at"])
    assert 3590 < (expires - timezone.now()).total_seconds() <= 3600
    assert Endpoint.objects.get().live_secrets() == [new, old]

    response = as_alice.post(
        API + f"endpoints/{pk}/rotate-secret/", {"grace_period": 0}, format="json"
    )
    assert Endpoint.objects.get().live_secrets()[0] == response.json()["secret"]
    assert new not in Endpoint.objects.get().live_secrets()
    bad = as_alice.post(API + f"endpoints/{pk}/rotate-secret/", {"grace_period": -1}, format="json")
    assert bad.status_code == 400 and "grace_period" in bad.json()


def test_a_test_event_reaches_the_endpoint_signed(as_alice, receiver, redis):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        pk = create(as_alice, url=receiver.url("/hook"), event_types=["order.*"]).json()["id"]
        response = as_alice.post(API + f"endpoints/{pk}/test/", {}, format="json")
        assert response.status_code == 202, response.content
        drain()
    assert response.json()["type"] == "webhook.test"
    [request] = receiver.to("/hook")
    assert request.headers["webhook-id"] == response.json()["id"]
    assert Delivery.objects.get().status == "succeeded"


def test_no_test_event_to_an_inactive_endpoint(as_alice):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        pk = create(as_alice, url="http://127.0.0.1:9/", is_active=False).json()["id"]
        response = as_alice.post(API + f"endpoints/{pk}/test/", {}, format="json")
    assert response.status_code == 409 and "inactive" in response.json()["detail"]
    assert response.json()["code"] == "endpoint_not_receiving"
    assert not Event.objects.exists()


def shaped_errors(exc, context):
    """A project's EXCEPTION_HANDLER that answers in its own shape."""
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"error": {"type": type(exc).__name__, "status": response.status_code}}
    return response


def test_conflicts_go_through_the_projects_exception_handler(as_alice):
    rest_framework = {"EXCEPTION_HANDLER": "tests.api.test_endpoints.shaped_errors"}
    with override_settings(DJANGO_HOOKS=SETTINGS, REST_FRAMEWORK=rest_framework):
        pk = create(as_alice, url="http://127.0.0.1:9/", is_active=False).json()["id"]
        response = as_alice.post(API + f"endpoints/{pk}/test/", {}, format="json")
        assert response.status_code == 409
        assert response.json() == {"error": {"type": "Conflict", "status": 409}}
        unprintable = {"HTTP_IDEMPOTENCY_KEY": "\x01"}
        bad_key = as_alice.post(API + f"endpoints/{pk}/test/", {}, format="json", **unprintable)
        assert bad_key.json() == {"error": {"type": "InvalidIdempotencyKey", "status": 400}}


def failed_delivery(alice, receiver, redis, path="/down"):
    """An endpoint of Alice's whose one delivery failed (a 500, no retries left)."""
    endpoint = Endpoint(url=receiver.url(path))
    endpoint.owner = alice
    endpoint.save()
    receiver.script(path, Reply(status=500))
    django_hooks.send_event("order.paid", {"id": 1}, owner=alice)
    drain()
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == "failed"
    return endpoint, delivery


def test_retry_sends_a_failed_delivery_again(as_alice, alice, receiver, redis):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        _, delivery = failed_delivery(alice, receiver, redis)
        response = as_alice.post(API + f"deliveries/{delivery.pk}/retry/")
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "pending"
        drain()
        delivery.refresh_from_db()
        assert delivery.status == "succeeded" and delivery.attempts == 2
        again = as_alice.post(API + f"deliveries/{delivery.pk}/retry/")
    assert again.status_code == 409 and "succeeded" in again.json()["detail"]
    assert again.json()["code"] == "not_retryable"
    detail = as_alice.get(API + f"deliveries/{delivery.pk}/").json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 200]


def test_recover_redelivers_failed_deliveries_in_the_window(as_alice, alice, receiver, redis):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        endpoint, delivery = failed_delivery(alice, receiver, redis)
        now = timezone.now()
        url = API + f"endpoints/{endpoint.pk}/recover/"
        early = as_alice.post(
            url,
            {
                "since": (now - dt.timedelta(hours=2)).isoformat(),
                "until": (now - dt.timedelta(hours=1)).isoformat(),
            },
            format="json",
        )
        assert early.json() == {"recovered": 0}
        response = as_alice.post(
            url, {"since": (now - dt.timedelta(hours=1)).isoformat()}, format="json"
        )
        assert response.status_code == 202 and response.json() == {"recovered": 1}
        drain()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    missing = as_alice.post(url, {}, format="json")
    assert missing.status_code == 400 and "since" in missing.json()
    backwards = as_alice.post(
        url, {"since": now.isoformat(), "until": now.isoformat()}, format="json"
    )
    assert backwards.status_code == 400 and "until" in backwards.json()


def test_stats_count_outcomes_in_the_window(as_alice, alice, receiver, redis):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        endpoint, _ = failed_delivery(alice, receiver, redis)
        receiver.script("/down", Reply(status=200), Reply(status=200), Reply(status=200))
        for n in range(3):
            django_hooks.send_event("order.paid", {"n": n}, owner=alice)
        drain()
    stats = as_alice.get(API + f"endpoints/{endpoint.pk}/stats/").json()
    assert (stats["total"], stats["succeeded"], stats["failed"]) == (4, 3, 1)
    assert stats["success_rate"] == 0.75
    soon = timezone.now() + dt.timedelta(hours=1)
    window = {"since": soon.isoformat(), "until": (soon + dt.timedelta(hours=1)).isoformat()}
    later = as_alice.get(API + f"endpoints/{endpoint.pk}/stats/", window).json()
    assert later["total"] == 0 and later["success_rate"] is None


def test_deliveries_filter_by_endpoint_event_and_status(as_alice, alice, receiver, redis):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        endpoint, failed = failed_delivery(alice, receiver, redis)
        other = Endpoint(url=receiver.url("/ok"))
        other.owner = alice
        other.save()
        event = django_hooks.send_event("order.shipped", {}, owner=alice)
        drain()
    by_endpoint = as_alice.get(API + "deliveries/", {"endpoint": other.pk}).json()["results"]
    assert {d["endpoint"] for d in by_endpoint} == {other.pk}
    by_status = as_alice.get(API + "deliveries/", {"status": "failed"}).json()["results"]
    assert [d["id"] for d in by_status] == [failed.pk]
    by_event = as_alice.get(API + "deliveries/", {"event": event.pk}).json()["results"]
    assert len(by_event) == 2 and {d["event_type"] for d in by_event} == {"order.shipped"}
    bad = as_alice.get(API + "deliveries/", {"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.json()
    detail = as_alice.get(API + f"events/{event.pk}/").json()
    assert {d["endpoint"] for d in detail["deliveries"]} == {endpoint.pk, other.pk}


def test_setting_is_active_re_enables_an_endpoint_disabled_for_failing(as_alice):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        pk = create(as_alice, url="http://127.0.0.1:9/").json()["id"]
    Endpoint.objects.filter(pk=pk).update(disabled_at=timezone.now(), disabled_reason="410 Gone")
    shown = as_alice.get(API + f"endpoints/{pk}/").json()
    assert shown["is_receiving"] is False and shown["disabled_reason"] == "410 Gone"
    response = as_alice.patch(API + f"endpoints/{pk}/", {"is_active": True}, format="json")
    assert response.json()["is_receiving"] is True and response.json()["disabled_at"] is None
    assert Endpoint.objects.get().is_receiving
