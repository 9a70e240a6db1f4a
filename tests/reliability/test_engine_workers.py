"""The engine across real worker processes: a killed worker's deliveries go out once its lease
runs out (no sweep, no time travel), and per-endpoint limits hold across workers."""

from __future__ import annotations

import pytest
from django.db import transaction

import django_hooks
from django_hooks.models import Delivery, Endpoint
from tests.reliability.harness import expected_keys, make_endpoints, status_counts, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def test_a_killed_workers_deliveries_go_out_once_its_lease_runs_out(worker_pool, fast_receiver):
    paths = make_endpoints(fast_receiver, 2)
    for path in paths.values():
        fast_receiver.hold(path)  # attempts wait, connection open, until released
    pool = worker_pool(settings={"LEASE": 3, "TIMEOUT": 30})
    pool.start(1)
    with transaction.atomic():
        for n in range(10):
            django_hooks.send_event("order.paid", {"id": n})
    fast_receiver.wait_for(20)  # all twenty in flight in the one worker
    (victim,) = pool.live()
    pool.freeze(victim)
    held = Delivery.objects.filter(claim_token__isnull=False, status="pending").count()
    pool.kill(victim)
    assert held == 20
    pool.start(1)
    for path in paths.values():
        fast_receiver.release(path)

    # Nobody sweeps: the drain the dead worker scheduled past its leases takes them over.
    wait_until(
        lambda: status_counts() == {"succeeded": 20},
        timeout=60,
        what=f"the dead worker's deliveries to be sent\n{pool.logs()}",
    )
    assert set(fast_receiver.accepted) == expected_keys(paths)


def test_the_endpoint_limit_holds_across_two_workers(worker_pool, fast_receiver):
    paths = make_endpoints(fast_receiver, 1)
    (endpoint_id,) = paths
    Endpoint.objects.filter(pk=endpoint_id).update(max_concurrency=3)
    (path,) = paths.values()
    fast_receiver.hold(path)
    pool = worker_pool()
    pool.start(2)
    with transaction.atomic():
        for n in range(30):
            django_hooks.send_event("order.paid", {"id": n})
    fast_receiver.wait_for(3)
    # A second drain, on the other worker, finds the endpoint at its limit: the claims of both
    # workers count against it, so it takes nothing.
    from django_hooks.outbound.wakeups import get_queue, wake

    wait_until(lambda: get_queue().count == 0, timeout=30, what="the first drain to start")
    wake()
    wait_until(lambda: get_queue().count == 0, timeout=30, what="the second drain to start")
    wait_until(
        lambda: list(pool.registered().values()).count("idle") == 1,
        timeout=30,
        what="the second drain to end",
    )
    in_flight = Delivery.objects.filter(claim_token__isnull=False, status="pending")
    assert in_flight.count() == 3
    assert len(fast_receiver.requests_to(path)) == 3
    fast_receiver.release(path)
    wait_until(lambda: status_counts() == {"succeeded": 30}, timeout=60, what="all delivered")
    assert max(fast_receiver.accepted.values()) == 1
