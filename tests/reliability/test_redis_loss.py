"""Redis down, restarted empty or flushed: the application keeps committing, the deliveries wait
in the database, and the sweep puts them back on the queue once Redis is back."""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from redis import Redis

import django_hooks
from django_hooks.models import Delivery
from tests.reliability.harness import (
    expected_keys,
    make_endpoints,
    quiet,
    recover,
    status_counts,
    wait_until,
)
from tests.testapp.models import Order

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def test_redis_down_while_the_application_commits(worker_pool, fault_redis, fast_receiver, caplog):
    paths = make_endpoints(fast_receiver, 5)
    fault_redis.crash()

    with caplog.at_level(logging.WARNING, logger="django_hooks"):
        for n in range(20):
            with transaction.atomic():
                order = Order.objects.create(total=n)
                django_hooks.send_event("order.paid", {"id": order.pk})  # must not raise

    assert Order.objects.count() == 20, "every business transaction committed"
    assert status_counts() == {"pending": 100}
    failures = [r for r in caplog.records if "Could not wake" in r.getMessage()]
    assert len(failures) == 20 and all(r.levelno == logging.WARNING for r in failures)

    fault_redis.start()
    pool = worker_pool()
    pool.start(1)
    quiet(pool)
    assert status_counts() == {"pending": 100}, "nothing reached the queue while Redis was down"

    # A minute later (time-travelled), the operator's periodic hooks_sweep finds them overdue.
    Delivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=61))
    call_command("hooks_sweep", stdout=io.StringIO())
    quiet(pool)
    assert status_counts() == {"succeeded": 100}
    assert set(fast_receiver.accepted) == expected_keys(paths)
    assert max(fast_receiver.accepted.values()) == 1


@pytest.mark.parametrize("fault", ["flush", "restart"])
def test_redis_lost_mid_run(worker_pool, fault_redis, fast_receiver, fault):
    paths = make_endpoints(fast_receiver, 10)
    pool = worker_pool()
    pool.start(2)
    with transaction.atomic():
        for n in range(100):
            django_hooks.send_event("order.paid", {"id": n})
    total = 1000

    wait_until(
        lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() >= 150,
        timeout=60,
        what="the drain to get going",
    )
    if fault == "flush":
        connection = Redis.from_url(fault_redis.url)
        connection.flushall()
        connection.close()
    else:
        # Workers that lose Redis exit (some only after their current job); a process
        # supervisor starts them again.
        pool.keep = 2
        fault_redis.restart()

    # Drains take their work from the database, not from the lost jobs: what was running goes
    # on, and the sweep covers whatever no drain was left to take.
    swept = recover(pool)
    assert status_counts() == {"succeeded": total}
    assert set(fast_receiver.accepted) == expected_keys(paths)
    assert max(fast_receiver.accepted.values()) == 1, "no worker died, so nothing is sent twice"
    print(f"\n{fault}: all {total} delivered; the sweep found {swept} stranded")


def test_sweeps_while_redis_lost_everything_wake_one_drain(fault_redis, transactional_db):
    from django_hooks.models import Endpoint
    from django_hooks.outbound.sweep import sweep
    from django_hooks.outbound.wakeups import get_queue

    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/hook")
    fault_redis.crash()
    with transaction.atomic():
        for n in range(50):
            django_hooks.send_event("order.paid", {"id": n})
    fault_redis.start()  # back, empty: the 50 deliveries have no job
    Delivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=120))

    assert sweep() == 50
    assert get_queue().count == 1, "one drain takes them all"
    # Two minutes later, no worker has caught up yet: the waiting drain still covers them.
    later = timezone.now() + dt.timedelta(seconds=120)
    assert sweep(now=later) == 50
    assert get_queue().count == 1
    # Redis loses it again: the next sweep wakes a drain again.
    Redis.from_url(fault_redis.url).flushall()
    assert sweep(now=later) == 50
    assert get_queue().count == 1
    assert Delivery.objects.filter(endpoint=endpoint, status="pending").count() == 50
