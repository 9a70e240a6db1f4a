"""Four workers on one queue while sweeps overlap and re-enqueue everything still pending:
every delivery is sent exactly once."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt
from django_hooks.outbound.sweep import sweep
from tests.reliability.harness import expected_keys, make_endpoints, quiet, status_counts

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

ENDPOINTS = 10
EVENTS = 100


def test_four_workers_and_overlapping_sweeps_send_each_delivery_once(worker_pool, fast_receiver):
    paths = make_endpoints(fast_receiver, ENDPOINTS)
    pool = worker_pool()
    pool.start(4)
    with transaction.atomic():
        for n in range(EVENTS):
            django_hooks.send_event("order.paid", {"id": n})
    # Two sweepers with no grace at all: every pending delivery gets job after job.
    pool.command("sweeper-1", "hooks_sweep", "--loop", "1", "--grace", "0")
    pool.command("sweeper-2", "hooks_sweep", "--loop", "1", "--grace", "0")
    swept = 0
    deadline = time.monotonic() + 90
    while Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
        assert time.monotonic() < deadline, status_counts()
        swept += sweep(grace=0)  # and a third sweeper, in this process
        time.sleep(1)
    quiet(pool)

    total = ENDPOINTS * EVENTS
    assert status_counts() == {"succeeded": total}
    assert set(fast_receiver.accepted) == expected_keys(paths)
    assert set(fast_receiver.accepted.values()) == {1}, "each delivery was POSTed exactly once"
    assert len(fast_receiver.log) == total
    assert DeliveryAttempt.objects.count() == total
    assert swept > 0, "the sweeps raced the workers (otherwise this proves nothing)"
