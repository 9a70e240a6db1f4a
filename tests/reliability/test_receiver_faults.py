"""Hostile receivers: 5xx, hangs past the timeout, connection resets, refused connections.
Retries follow RETRY_SCHEDULE (time-travelled, not slept) and every outcome is exact."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.testing import free_port
from tests.fastreceiver import HANG, RESET, Flaky
from tests.reliability.harness import quiet

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SCHEDULE = [60, 300, 1800, 7200]  # a production-like schedule: 5 attempts at most
MAX_ATTEMPTS = 1 + len(SCHEDULE)
EVENTS = 1
FLAKY_EVENTS = 30


def time_travel_to_retries(pool) -> int:
    """Check each pending delivery waits as the schedule says, then move time past the wait and
    run the operator's sweep; return how many deliveries were due."""
    quiet(pool)
    pending = list(Delivery.objects.filter(status=Delivery.Status.PENDING))
    for delivery in pending:
        last = delivery.attempt_log.order_by("-number").first()
        assert last is not None and last.number == delivery.attempts
        wait = (delivery.next_attempt_at - last.created_at).total_seconds()
        base = SCHEDULE[delivery.attempts - 1]
        assert 0.8 * base - 0.01 <= wait <= 1.2 * base + 0.01, (delivery.attempts, wait)
    Delivery.objects.filter(pk__in=[d.pk for d in pending]).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=61)
    )
    # Past the pause of every endpoint whose circuit opened (a hang, a refused connection).
    Endpoint.objects.update(paused_until=None)
    call_command("hooks_sweep", stdout=io.StringIO())
    return len(pending)


def test_receiver_faults_retry_on_schedule_with_exact_outcomes(worker_pool, fast_receiver):
    recovers = Endpoint.objects.create(url=fast_receiver.url("/recovers"), event_types=["order.*"])
    down = Endpoint.objects.create(url=fast_receiver.url("/down"), event_types=["order.*"])
    refused = Endpoint.objects.create(  # nothing listens there: every connection is refused
        url=f"http://127.0.0.1:{free_port()}/hook", event_types=["order.*"]
    )
    flaky = Endpoint.objects.create(url=fast_receiver.url("/flaky"), event_types=["flaky.*"])
    # The order delivery to /recovers meets a 500, a hang past the timeout and a reset first.
    fast_receiver.script("/recovers", 500, HANG, RESET)
    fast_receiver.behave("/down", 503)
    fast_receiver.behave("/flaky", Flaky(0.5, status=502, seed=8))

    pool = worker_pool(settings={"RETRY_SCHEDULE": SCHEDULE, "TIMEOUT": 1})
    pool.start(2)
    with transaction.atomic():
        for n in range(EVENTS):
            django_hooks.send_event("order.paid", {"id": n})
        for n in range(FLAKY_EVENTS):
            django_hooks.send_event("flaky.ping", {"id": n})

    rounds = 0
    while time_travel_to_retries(pool):
        rounds += 1
        assert rounds <= len(SCHEDULE), "no delivery may be retried beyond the schedule"
    assert rounds == len(SCHEDULE)

    def deliveries(endpoint):
        return list(Delivery.objects.filter(endpoint=endpoint))

    for delivery in deliveries(recovers):
        assert (delivery.status, delivery.attempts) == ("succeeded", 4)
        errors = list(delivery.attempt_log.values_list("status_code", "error"))
        assert errors[0] == (500, "")
        assert errors[1] == (None, "timed out after 1s")
        assert errors[2][0] is None and errors[2][1] in (
            "connection reset",
            "connection closed by the server without a response",
        )
        assert errors[3] == (200, "")
    for delivery in deliveries(down):
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "failed",
            MAX_ATTEMPTS,
            503,
        )
    for delivery in deliveries(refused):
        assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
        assert set(delivery.attempt_log.values_list("error", flat=True)) == {"connection refused"}

    # Random 502s: each delivery's outcome is exactly what the receiver answered it.
    answers: dict[str, list[str]] = {}
    for request in fast_receiver.requests_to("/flaky"):
        answers.setdefault(request.webhook_id, []).append(request.action)
    outcomes = {"succeeded": 0, "failed": 0}
    for delivery in deliveries(flaky):
        got = answers[delivery.event_id]
        assert delivery.attempts == len(got) == delivery.attempt_log.count()
        if got[-1] == "200":
            assert delivery.status == "succeeded" and got[:-1] == ["502"] * (len(got) - 1)
        else:
            assert delivery.status == "failed" and got == ["502"] * MAX_ATTEMPTS
        outcomes[delivery.status] += 1
    assert outcomes["succeeded"] > 0
    assert set(fast_receiver.accepted.values()) == {1}, "a success is never sent again"
    assert DeliveryAttempt.objects.count() == sum(d.attempts for d in Delivery.objects.all())
