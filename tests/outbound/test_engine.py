"""The delivery engine in one process: real database, real Redis, a real receiver on 127.0.0.1.

Speed lives in the benchmarks; these tests check the properties that make it: many attempts in
flight at once, per-endpoint limits, the circuit breaker, the rate limit and the heartbeat.
"""

import datetime as dt
import threading
import time

import pytest
from django.utils import timezone

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.outbound.engine import Drain
from tests.receiver import Reply, hooks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]


def send(count: int) -> None:
    for n in range(count):
        django_hooks.send_event("order.paid", {"n": n})


def test_one_worker_keeps_many_attempts_in_flight_within_each_endpoints_limit(receiver):
    Endpoint.objects.create(url=receiver.url("/capped"), max_concurrency=3)
    Endpoint.objects.create(url=receiver.url("/free"))
    receiver.default = Reply(200, delay=0.5)
    with hooks(CONCURRENCY=64, ENDPOINT_CONCURRENCY=16):
        send(10)
        result = Drain().run()
    assert result.summary()["succeeded"] == 20
    # Many at once where nothing limits them; never more than three where max_concurrency is.
    assert receiver.most_in_flight["/free"] > 3
    assert 1 < receiver.most_in_flight["/capped"] <= 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_concurrency_bounds_the_attempts_a_process_has_in_flight(receiver):
    Endpoint.objects.create(url=receiver.url("/a"))
    receiver.default = Reply(200, delay=0.5)
    with hooks(CONCURRENCY=4):
        send(12)
        Drain().run()
    assert 1 < receiver.most_in_flight["/a"] <= 4
    assert Delivery.objects.filter(status="succeeded").count() == 12


def test_a_hanging_endpoint_holds_its_limit_then_its_circuit_opens_and_others_go_on(receiver):
    hanging = Endpoint.objects.create(url=receiver.url("/hang"))
    healthy = [Endpoint.objects.create(url=receiver.url(f"/ok{n}")) for n in range(3)]
    receiver.script("/hang", *[Reply(200, delay=6)] * 50)
    with hooks(TIMEOUT=3, ENDPOINT_CONCURRENCY=4, RETRY_SCHEDULE=[60]):
        send(10)
        Drain().run()
    # Every healthy delivery was made while the hanging endpoint's attempts were still waiting.
    first_timeout = DeliveryAttempt.objects.filter(delivery__endpoint=hanging).earliest(
        "created_at"
    )
    for endpoint in healthy:
        done = Delivery.objects.filter(endpoint=endpoint)
        assert {d.status for d in done} == {"succeeded"}
        assert all(d.completed_at < first_timeout.created_at for d in done)
    # The hanging endpoint took its four slots once, then was paused: the rest wait, unattempted.
    attempts = DeliveryAttempt.objects.filter(delivery__endpoint=hanging)
    assert attempts.count() == 4
    assert set(attempts.values_list("error", flat=True)) == {"timed out after 3s"}
    untouched = Delivery.objects.filter(endpoint=hanging, attempts=0)
    assert untouched.count() == 6 and {d.status for d in untouched} == {"pending"}
    assert all(d.claim_token is None for d in untouched)
    hanging.refresh_from_db()
    assert hanging.circuit_failures == 1 and hanging.paused_until > timezone.now()


def test_after_its_pause_one_probe_at_a_time_tests_the_endpoint_and_an_answer_closes_it(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url("/back"))
    receiver.default = Reply(200, delay=0.2)
    with hooks(ENDPOINT_CONCURRENCY=8):
        send(6)
        # As the circuit left it: opened once, and its pause just over.
        Endpoint.objects.filter(pk=endpoint.pk).update(
            circuit_failures=1, paused_until=timezone.now() - dt.timedelta(seconds=1)
        )
        Drain().run()
    endpoint.refresh_from_db()
    assert (endpoint.circuit_failures, endpoint.paused_until) == (0, None)
    assert Delivery.objects.filter(status="succeeded").count() == 6
    # The probe went alone; once it was answered, the endpoint got its usual limit back.
    first = receiver.requests[0]
    assert receiver.to("/back")[0] is first
    assert 1 < receiver.most_in_flight["/back"] <= 5


def test_an_unreachable_probe_reopens_the_circuit_for_longer(receiver):
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/closed")
    with hooks(RETRY_SCHEDULE=[60]):
        send(3)
        Endpoint.objects.filter(pk=endpoint.pk).update(
            circuit_failures=1, paused_until=timezone.now() - dt.timedelta(seconds=1)
        )
        before = timezone.now()
        Drain().run()
    endpoint.refresh_from_db()
    assert DeliveryAttempt.objects.count() == 1, "one probe, not three attempts"
    assert endpoint.circuit_failures == 2
    assert endpoint.paused_until - before >= dt.timedelta(seconds=10)  # the second cooldown


def test_a_rate_limited_endpoint_gets_at_most_its_rate(receiver):
    Endpoint.objects.create(url=receiver.url("/limited"), rate_limit=5)
    with hooks():
        send(15)
        Drain().run()
    times = sorted(DeliveryAttempt.objects.values_list("created_at", flat=True))
    assert len(times) == 15
    # Five now, five a second later, five a second after that.
    assert (times[-1] - times[0]).total_seconds() >= 1.8
    for start in times:
        window = [t for t in times if start <= t < start + dt.timedelta(seconds=0.9)]
        assert len(window) <= 5


def test_a_live_worker_renews_the_lease_of_an_attempt_that_outlasts_it(receiver):
    Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(200, delay=2.5)
    leases = []
    with hooks(LEASE=3, TIMEOUT=5):
        send(1)
        worker = threading.Thread(target=lambda: Drain().run())
        worker.start()
        while worker.is_alive():
            leases.append(Delivery.objects.values_list("locked_until", flat=True).get())
            time.sleep(0.2)
        worker.join()
    held = [lease for lease in leases if lease is not None]
    assert len(set(held)) >= 2, "the lease was renewed while the attempt ran"
    assert Delivery.objects.get().status == "succeeded"


def test_a_drain_takes_every_due_delivery_whatever_transactions_recorded_them(receiver, redis):
    Endpoint.objects.create(url=receiver.url())
    with hooks():
        send(30)  # thirty transactions, one wake-up
        from django_hooks.outbound.wakeups import get_queue

        assert get_queue().count == 1
        from django_hooks.testing import run_worker

        run_worker()
    assert Delivery.objects.filter(status="succeeded").count() == 30
