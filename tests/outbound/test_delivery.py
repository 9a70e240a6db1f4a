"""The delivery path end to end: real Redis, real worker code, a real receiver on 127.0.0.1."""

import datetime as dt
import json

import pytest
from django.test import override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

import django_hooks
from django_hooks import signals
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.outbound.state import enable_endpoint
from django_hooks.outbound.sweep import sweep
from django_hooks.outbound.tasks import deliver
from django_hooks.testing import drain, run_worker
from tests.receiver import Reply, hooks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]


@pytest.fixture
def caught():
    received = []

    def catch(signal):
        def receiver(sender, **kwargs):
            received.append((signal, kwargs))

        signal.connect(receiver, weak=False, dispatch_uid=f"test-{id(signal)}")
        return receiver

    for signal in (signals.delivery_succeeded, signals.delivery_failed, signals.endpoint_disabled):
        catch(signal)
    yield received
    for signal in (signals.delivery_succeeded, signals.delivery_failed, signals.endpoint_disabled):
        signal.disconnect(dispatch_uid=f"test-{id(signal)}")


def test_a_2xx_delivers_a_standard_webhook_the_reference_library_verifies(receiver, caught):
    endpoint = Endpoint.objects.create(url=receiver.url(), headers={"X-Tenant": "acme"})
    event = django_hooks.send_event("order.paid", {"id": 42, "total": "9.90"})
    drain()

    (request,) = receiver.to("/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event.id
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["accept-encoding"] == "identity"
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload == {
        "type": "order.paid",
        "timestamp": payload["timestamp"],
        "data": {"id": 42, "total": "9.90"},
    }
    assert payload["timestamp"].endswith("Z")

    delivery = Delivery.objects.get(event=event)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.completed_at is not None and delivery.next_attempt_at is None
    attempt = delivery.attempt_log.get()
    assert attempt.status_code == 200 and attempt.response_body == "ok" and attempt.error == ""
    assert attempt.request_headers["webhook-signature"].startswith("v1,")
    assert [signal for signal, _ in caught] == [signals.delivery_succeeded]


def test_failures_are_retried_with_the_same_id_and_a_fresh_signature(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.script("/hook", Reply(500), Reply(400), Reply(204, body=b""))
    with hooks(RETRY_SCHEDULE=[2, 0]):
        event = django_hooks.send_event("order.paid", {"id": 1})
        drain()
    requests = receiver.to("/hook")
    assert [r.headers["webhook-id"] for r in requests] == [event.id] * 3
    assert requests[0].headers["webhook-timestamp"] != requests[1].headers["webhook-timestamp"]
    assert len({r.headers["webhook-signature"] for r in requests}) >= 2
    assert len({r.body for r in requests}) == 1
    for request in requests:
        Webhook(endpoint.secret).verify(request.body, request.headers)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [500, 400, 204]
    assert delivery.attempt_log.first().error == ""


def test_after_the_last_retry_the_delivery_fails_and_the_signal_is_sent(receiver, caught):
    Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(503)
    django_hooks.send_event("order.paid", {})
    drain()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 4, "HTTP 503")
    assert len(receiver.requests) == 4  # 1 + len(RETRY_SCHEDULE)
    assert [signal for signal, _ in caught] == [signals.delivery_failed]
    assert caught[0][1]["delivery"].pk == delivery.pk


def test_redirects_are_never_followed(receiver):
    Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(302, headers={"Location": receiver.url("/elsewhere")})
    with hooks(RETRY_SCHEDULE=[]):
        django_hooks.send_event("order.paid", {})
        drain()
    assert receiver.to("/elsewhere") == []
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error


def test_timeout_and_refused_connections_are_recorded_and_retried(receiver):
    slow = Endpoint.objects.create(url=receiver.url("/slow"))
    receiver.script("/slow", Reply(200, delay=3))
    refused = Endpoint.objects.create(url="http://127.0.0.1:9/closed")
    with hooks(TIMEOUT=1, RETRY_SCHEDULE=[0]):
        django_hooks.send_event("order.paid", {})
        drain()
    slow_delivery = Delivery.objects.get(endpoint=slow)
    assert slow_delivery.status == "succeeded" and slow_delivery.attempts == 2
    assert "timed out" in slow_delivery.attempt_log.first().error
    refused_delivery = Delivery.objects.get(endpoint=refused)
    assert refused_delivery.status == "failed" and refused_delivery.attempts == 2
    assert "refused" in refused_delivery.last_error and refused_delivery.last_status_code is None


def test_410_disables_the_endpoint_until_it_is_re_enabled(receiver, caught):
    # One attempt at a time, so the second delivery is not already in flight when the 410 comes.
    endpoint = Endpoint.objects.create(url=receiver.url(), max_concurrency=1)
    receiver.script("/hook", Reply(410))
    django_hooks.send_event("order.paid", {"n": 1})
    django_hooks.send_event("order.paid", {"n": 2})
    drain()
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and "410" in endpoint.disabled_reason
    assert len(receiver.requests) == 1
    assert Delivery.objects.filter(status="pending").count() == 2
    assert [signal for signal, _ in caught] == [signals.endpoint_disabled]
    # Disabled: no new deliveries either.
    django_hooks.send_event("order.paid", {"n": 3})
    assert Delivery.objects.count() == 2

    assert enable_endpoint(endpoint) == 2
    drain()
    assert sorted(json.loads(r.body)["data"]["n"] for r in receiver.requests[1:]) == [1, 2]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_retry_after_on_429_is_honoured_within_bounds(receiver):
    Endpoint.objects.create(url=receiver.url())
    receiver.script("/hook", Reply(429, headers={"Retry-After": "8"}))
    with hooks(RETRY_SCHEDULE=[5, 5]):
        django_hooks.send_event("order.paid", {})
        before = timezone.now()
        run_worker()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 7.5 <= wait <= 9  # 8 s asked, inside [5, 10]; no jitter on an explicit Retry-After


def test_rotation_signs_with_both_secrets(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    old = endpoint.secret
    new = endpoint.rotate_secret()
    django_hooks.send_event("order.paid", {})
    drain()
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)


def test_an_address_outside_allowed_networks_is_blocked_at_delivery_time(receiver):
    Endpoint.objects.create(url=receiver.url())
    with hooks(ALLOWED_NETWORKS=[], RETRY_SCHEDULE=[]):
        django_hooks.send_event("order.paid", {})
        drain()
    assert receiver.requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.last_error.startswith("blocked")
    assert "loopback" in delivery.last_error


def test_a_delivery_is_never_sent_again_after_success(receiver):
    Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {})
    drain()
    delivery = Delivery.objects.get()
    assert deliver([delivery.pk]) == {"attempted": 0, "succeeded": 0, "failed": 0, "retrying": 0}
    assert sweep(grace=0) == 0
    assert len(receiver.requests) == 1 and DeliveryAttempt.objects.count() == 1


def test_a_delivery_held_by_another_worker_is_not_sent_twice(receiver):
    Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {})
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() + dt.timedelta(minutes=5)
    )
    assert deliver([delivery.pk])["attempted"] == 0
    assert receiver.requests == []


def test_sweep_recovers_a_delivery_whose_job_redis_lost(receiver, redis):
    Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {})
    assert redis.llen("rq:queue:default") == 1
    redis.flushdb()
    run_worker()
    assert receiver.requests == [] and Delivery.objects.get().status == "pending"

    assert sweep(grace=0) == 1
    drain()
    assert len(receiver.requests) == 1 and Delivery.objects.get().status == "succeeded"


def test_sweep_recovers_a_delivery_whose_worker_died_mid_attempt(receiver, redis):
    Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {})
    redis.flushdb()
    # A worker claimed it, then died: the lease is still running, so nobody may take it yet.
    Delivery.objects.update(locked_until=timezone.now() + dt.timedelta(seconds=60))
    assert sweep(grace=0) == 0
    Delivery.objects.update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert sweep(grace=0) == 1
    drain()
    assert Delivery.objects.get().status == "succeeded"


def test_send_event_survives_redis_being_down(receiver, settings, caplog):
    Endpoint.objects.create(url=receiver.url())
    queues = {"default": {"URL": "redis://127.0.0.1:9/0"}}
    with override_settings(RQ_QUEUES=queues):
        event = django_hooks.send_event("order.paid", {})
    assert "stay pending until hooks_sweep" in caplog.text
    assert Delivery.objects.get(event=event).status == "pending"
    assert sweep(grace=0) == 1
    drain()
    assert Delivery.objects.get().status == "succeeded"


def test_an_endpoint_failing_for_disable_after_is_disabled_and_a_success_resets_the_clock(
    receiver, caught
):
    flaky = Endpoint.objects.create(url=receiver.url("/flaky"))
    dead = Endpoint.objects.create(url=receiver.url("/dead"))
    receiver.script("/dead", Reply(500))
    with hooks(RETRY_SCHEDULE=[60]):
        django_hooks.send_event("order.paid", {})
        run_worker()
    flaky.refresh_from_db(), dead.refresh_from_db()
    assert flaky.failing_since is None and dead.failing_since is not None

    six_days_ago = timezone.now() - dt.timedelta(days=6)
    Endpoint.objects.update(failing_since=six_days_ago)
    receiver.script("/dead", Reply(500))
    with hooks(RETRY_SCHEDULE=[60], DISABLE_AFTER=5 * 24 * 3600):
        django_hooks.send_event("order.paid", {})
        run_worker()
    flaky.refresh_from_db(), dead.refresh_from_db()
    assert flaky.failing_since is None and flaky.disabled_at is None
    assert dead.disabled_at is not None and "failed for 5 days" in dead.disabled_reason
    assert [
        kwargs["endpoint"].pk for signal, kwargs in caught if signal is signals.endpoint_disabled
    ] == [dead.pk]


def test_a_broken_delivery_does_not_lose_the_rest_of_its_batch(receiver):
    good = Endpoint.objects.create(url=receiver.url("/good"), headers={"X-Api-Key": "k-123"})
    broken = Endpoint.objects.create(url=receiver.url("/broken"))
    Endpoint.objects.filter(pk=broken.pk).update(secret_ciphertext="not-a-fernet-token")
    with hooks(RETRY_SCHEDULE=[]):
        django_hooks.send_event("order.paid", {})
        drain()
    assert Delivery.objects.get(endpoint=good).status == "succeeded"
    failed = Delivery.objects.get(endpoint=broken)
    assert failed.status == "failed" and failed.last_error.startswith(
        "internal error: DecryptionError"
    )
    assert receiver.to("/broken") == [] and receiver.to("/good")[0].headers["x-api-key"] == "k-123"
    # The endpoint's own header values are not kept in the attempt log.
    attempt = DeliveryAttempt.objects.get(delivery__endpoint=good)
    assert attempt.request_headers["X-Api-Key"] == "[hidden]"


def test_nul_characters_are_refused_before_anything_is_written():
    from django_hooks.exceptions import PayloadError

    Endpoint.objects.create(url="http://127.0.0.1:9/")
    with pytest.raises(PayloadError, match="NUL"):
        django_hooks.send_event("order.paid", {"name": "a\x00b"})
    assert not Delivery.objects.exists()


def test_cancelled_deliveries_are_never_sent_and_can_be_retried(receiver):
    from django_hooks.outbound.state import cancel_deliveries, retry_deliveries

    Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {})
    assert cancel_deliveries(Delivery.objects.all()) == 1
    drain()
    assert sweep(grace=0) == 0 and receiver.requests == []
    delivery = Delivery.objects.get()
    assert delivery.status == "cancelled" and delivery.completed_at is not None
    assert retry_deliveries(Delivery.objects.all()) == 1
    drain()
    assert Delivery.objects.get().status == "succeeded" and len(receiver.requests) == 1


def test_a_worker_that_lost_its_lease_writes_and_signals_nothing(receiver, caught, monkeypatch):
    from django_hooks.outbound import engine as engine_module

    Endpoint.objects.create(url=receiver.url())
    django_hooks.send_event("order.paid", {})
    pending = Delivery.objects.get()
    real_send = engine_module.send_attempt

    def send_then_lose_the_lease(*args, **kwargs):
        response = real_send(*args, **kwargs)
        # Meanwhile another worker took over the expired lease and succeeded.
        Delivery.objects.filter(pk=pending.pk).update(
            claim_token=None, status="succeeded", attempts=5, completed_at=timezone.now()
        )
        return response

    monkeypatch.setattr(engine_module, "send_attempt", send_then_lose_the_lease)
    receiver.script("/hook", Reply(500))
    result = deliver([pending.pk])
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 5)
    assert result["retrying"] == 0 and caught == []
