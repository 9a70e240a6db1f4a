"""Workers SIGKILLed again and again while thousands of deliveries drain: nothing is lost,
and the only duplicates are deliveries a killed worker had in flight."""

from __future__ import annotations

import random
import time

import pytest
from django.db import transaction

import django_hooks
from django_hooks.models import Delivery
from tests.reliability.harness import (
    expected_keys,
    make_endpoints,
    recover,
    status_counts,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

ENDPOINTS = 20
EVENTS = 400  # x 20 endpoints = 8,000 deliveries
BATCH = 20  # attempts in flight per worker
KILLS = 5


def busy_or_sweep(pool):
    """The busy workers; with none, what the operator's periodic ``hooks_sweep`` does (in real
    time: if the killed worker held RQ's scheduler lock, its scheduled takeover waits for it)."""
    from django_hooks.outbound.sweep import sweep

    def check():
        busy = [name for name, state in pool.registered().items() if state == "busy"]
        if not busy:
            sweep(grace=0)
        return busy

    return check


def test_sigkill_while_draining_loses_nothing(worker_pool, fast_receiver):
    paths = make_endpoints(fast_receiver, ENDPOINTS)
    # BATCH attempts in flight per worker: a kill can cost at most that many duplicates.
    # A short lease: a dead worker's deliveries are taken over within seconds, in real time.
    pool = worker_pool(settings={"CONCURRENCY": BATCH, "BATCH_SIZE": BATCH, "LEASE": 3})
    pool.start(2)
    with transaction.atomic():
        for n in range(EVENTS):
            django_hooks.send_event("order.paid", {"order": n, "total": "9.90"})
    expected = expected_keys(paths)
    assert len(expected) == ENDPOINTS * EVENTS

    rng = random.Random(8)
    in_flight: set[tuple[str, str]] = set()
    kills_mid_batch = 0
    for _ in range(KILLS):
        time.sleep(0.3)  # let the workers get into the work between two kills
        busy = wait_until(busy_or_sweep(pool), timeout=30, what="a busy worker", every=0.3)
        victim = rng.choice(busy)
        # Frozen first, so that what it holds can be read before it dies: it claims nothing more.
        pool.freeze(victim)
        held = set(
            Delivery.objects.filter(
                status=Delivery.Status.PENDING, claim_token__isnull=False
            ).values_list("endpoint_id", "event_id")
        )
        in_flight |= {(paths[ep], ev) for ep, ev in held}
        kills_mid_batch += bool(held)
        pool.kill(victim)
        pool.start(1, wait=False)

    assert kills_mid_batch >= 3, "the kills should land while workers hold batches"
    recover(pool, timeout=90)

    assert status_counts() == {"succeeded": ENDPOINTS * EVENTS}
    accepted = fast_receiver.accepted
    assert set(accepted) == expected, "the receiver must have every (endpoint, webhook-id)"
    duplicates = {key for key, times in accepted.items() if times > 1}
    # Only a delivery POSTed by a worker that died before recording it is sent again.
    assert duplicates <= in_flight
    assert len(duplicates) <= pool.killed * BATCH  # at most what one worker has in flight
    print(
        f"\n{pool.killed} kills, {len(in_flight)} deliveries in flight at a kill, "
        f"{len(duplicates)} delivered twice, {ENDPOINTS * EVENTS} succeeded"
    )
