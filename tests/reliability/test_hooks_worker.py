"""``manage.py hooks_worker``, the one worker command: it says what it serves, delivers, sweeps
up work whose job Redis lost without a separate ``hooks_sweep``, and stops cleanly on SIGTERM,
handing what it had not started to the next worker."""

from __future__ import annotations

import signal

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from redis import Redis

import django_hooks
from django_hooks.models import Delivery
from tests.reliability.harness import expected_keys, make_endpoints, status_counts, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def start_worker(pool, name: str, *args: str) -> None:
    pool.command(name, "hooks_worker", "--verbosity", "1", *args)
    wait_until(
        lambda: "Ctrl-C stops" in pool.log_tail(name),
        timeout=30,
        what=f"{name} to start\n{pool.logs()}",
    )


def test_it_delivers_and_a_sigterm_hands_unstarted_work_to_the_next_worker(
    worker_pool, fast_receiver
):
    paths = make_endpoints(fast_receiver, 10)
    for path in paths.values():
        fast_receiver.hold(path)
    pool = worker_pool(settings={"CONCURRENCY": 2, "TIMEOUT": 30})
    start_worker(pool, "first")
    assert "queues default on redis://127.0.0.1:" in pool.log_tail("first")
    with transaction.atomic():
        django_hooks.send_event("order.paid", {"id": 1})
    fast_receiver.wait_for(2)  # its two slots are busy; eight deliveries wait their turn

    pool.workers["first"].send_signal(signal.SIGTERM)
    for path in paths.values():
        fast_receiver.release(path)
    assert pool.workers["first"].wait(timeout=30) == 0
    log = pool.log_tail("first", 200)
    assert "worker" in log and "stopped." in log and "Traceback" not in log, log
    # It finished what was in flight and claimed nothing more.
    assert status_counts() == {"succeeded": 2, "pending": 8}
    assert not Delivery.objects.filter(claim_token__isnull=False).exists()

    start_worker(pool, "second")
    wait_until(
        lambda: status_counts() == {"succeeded": 10},
        timeout=60,
        what=f"the rest to be sent by the next worker\n{pool.logs()}",
    )
    assert set(fast_receiver.accepted) == expected_keys(paths)
    assert set(fast_receiver.accepted.values()) == {1}


def test_its_sweep_sends_deliveries_whose_job_redis_lost(worker_pool, fast_receiver, fault_redis):
    paths = make_endpoints(fast_receiver, 3)
    with transaction.atomic():
        django_hooks.send_event("order.paid", {"id": 1})
    Redis.from_url(fault_redis.url).flushall()  # the drain job is gone: only a sweep finds them
    pool = worker_pool()
    start_worker(pool, "sweeping", "--sweep-every", "1")
    wait_until(
        lambda: status_counts() == {"succeeded": 3},
        timeout=60,
        what=f"the sweep to wake a drain\n{pool.logs()}",
    )
    assert set(fast_receiver.accepted) == expected_keys(paths)


def test_it_refuses_bad_options_and_an_unreachable_redis_with_the_fix():

    with pytest.raises(CommandError, match="--sweep-every"):
        call_command("hooks_worker", "--sweep-every", "-1")
    queue = settings.RQ_QUEUES["default"]
    previous, queue["URL"] = queue["URL"], "redis://127.0.0.1:1/0"  # django_rq reads it in place
    try:
        with pytest.raises(CommandError, match="Could not reach the queue's Redis.*redis-server"):
            call_command("hooks_worker", "--burst")
    finally:
        queue["URL"] = previous
