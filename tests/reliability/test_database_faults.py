"""Database faults during a batch: a lock held past the worker's lock timeout while it records
its attempts, and (PostgreSQL) the worker's connection terminated mid-batch or while idle.
The job fails safe, the results are written once the database answers again, and whatever a
failed job leaves behind the sweep recovers."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection, transaction
from redis import Redis
from rq.registry import FailedJobRegistry

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt
from django_hooks.outbound.wakeups import get_queue
from tests.reliability.harness import (
    expected_keys,
    make_endpoints,
    quiet,
    recover,
    status_counts,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

ENDPOINTS = 10  # one event: one job of 10 deliveries


def lock_options() -> dict:
    """The workers give up on a lock after one second."""
    if connection.vendor == "sqlite":
        return {"timeout": 1}
    return {"options": "-c lock_timeout=1000"}


class DeliveryLock:
    """Another connection holding a write lock on the deliveries (SQLite: the whole database)."""

    held: list[DeliveryLock] = []

    def __init__(self) -> None:
        self.released = False
        DeliveryLock.held.append(self)
        if connection.vendor == "sqlite":
            self.raw = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
            self.raw.execute("BEGIN IMMEDIATE")
        else:
            self.other = connection.copy()
            self.other.set_autocommit(False)
            with self.other.cursor() as cursor:
                cursor.execute(f"SELECT id FROM {Delivery._meta.db_table} FOR UPDATE")  # noqa: S608

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if connection.vendor == "sqlite":
            self.raw.rollback()
            self.raw.close()
        else:
            self.other.rollback()
            self.other.close()


@pytest.fixture(autouse=True)
def release_locks():
    """A failing test must not leave a lock that would block the database flush after it."""
    yield
    while DeliveryLock.held:
        DeliveryLock.held.pop().release()


def start_batch_then_lock(pool, fast_receiver) -> tuple[dict, DeliveryLock]:
    """Every attempt of one event in flight, held unanswered; the lock taken; the POSTs let go.

    All of them are held because the engine writes each group of results as it finishes: a
    delivery answered before the lock is taken would be recorded before the fault begins."""
    paths = make_endpoints(fast_receiver, ENDPOINTS)
    for path in paths.values():
        fast_receiver.hold(path)
    with transaction.atomic():
        django_hooks.send_event("order.paid", {"id": 1})
    fast_receiver.wait_for(ENDPOINTS)  # the worker has claimed them all and is POSTing
    lock = DeliveryLock()
    for path in paths.values():
        fast_receiver.release(path)
    return paths, lock


def failed_jobs(pool) -> int:
    connection = Redis.from_url(pool.redis_url)
    try:
        return FailedJobRegistry(get_queue().name, connection=connection).count
    finally:
        connection.close()


def test_a_lock_held_for_seconds_while_recording_delays_the_write_but_loses_nothing(
    worker_pool, fast_receiver
):
    pool = worker_pool(db_options=lock_options())
    pool.start(1)
    paths, lock = start_batch_then_lock(pool, fast_receiver)
    # The worker's write times out at least once, then the lock goes away.
    wait_until(lambda: "trying again" in pool.logs(tail=None), timeout=30, what="a failed write")
    lock.release()
    quiet(pool)

    assert status_counts() == {"succeeded": ENDPOINTS}, pool.logs()
    assert DeliveryAttempt.objects.count() == ENDPOINTS
    assert set(fast_receiver.accepted) == expected_keys(paths)
    assert set(fast_receiver.accepted.values()) == {1}, "recorded once the lock went: no resend"
    assert failed_jobs(pool) == 0


def test_a_lock_held_past_every_retry_fails_the_job_safely_and_the_sweep_recovers(
    worker_pool, fast_receiver
):
    pool = worker_pool(db_options=lock_options())
    pool.start(1)
    paths, lock = start_batch_then_lock(pool, fast_receiver)
    try:
        wait_until(lambda: failed_jobs(pool) == 1, timeout=60, what="the job to fail")
    finally:
        lock.release()

    # Failed safe: nothing recorded, the deliveries still pending under the dead job's lease.
    assert status_counts() == {"pending": ENDPOINTS}
    assert DeliveryAttempt.objects.count() == 0
    assert Delivery.objects.filter(locked_until__isnull=False).count() == ENDPOINTS
    recover(pool)
    assert status_counts() == {"succeeded": ENDPOINTS}
    assert set(fast_receiver.accepted) == expected_keys(paths)
    # At least once: the unrecorded POSTs were made again.
    assert set(fast_receiver.accepted.values()) == {2}


def terminate_other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="terminates PostgreSQL backends"
)


@postgres_only
def test_a_connection_dropped_mid_batch_is_replaced_and_the_results_written(
    worker_pool, fast_receiver
):
    pool = worker_pool()
    pool.start(1)
    paths = make_endpoints(fast_receiver, ENDPOINTS)
    fast_receiver.hold("/e0")
    with transaction.atomic():
        django_hooks.send_event("order.paid", {"id": 1})
    fast_receiver.wait_for(1, path="/e0")
    assert terminate_other_backends() >= 1  # the worker's connection, mid-batch
    fast_receiver.release("/e0")
    quiet(pool)

    assert status_counts() == {"succeeded": ENDPOINTS}, pool.logs()
    assert set(fast_receiver.accepted) == expected_keys(paths)
    assert set(fast_receiver.accepted.values()) == {1}


@postgres_only
def test_a_connection_dropped_while_the_worker_idles_does_not_break_later_jobs(
    worker_pool, fast_receiver
):
    pool = worker_pool(settings={}, db_options={})
    pool.env["HOOKS_CONN_MAX_AGE"] = "600"  # persistent connections, as long-lived workers use
    pool.start(1)
    paths = make_endpoints(fast_receiver, ENDPOINTS)
    with transaction.atomic():
        django_hooks.send_event("order.paid", {"id": 1})
    quiet(pool)
    assert terminate_other_backends() >= 1  # e.g. a database restart between two jobs
    with transaction.atomic():
        django_hooks.send_event("order.paid", {"id": 2})
    quiet(pool)

    assert status_counts() == {"succeeded": 2 * ENDPOINTS}, pool.logs()
    assert set(fast_receiver.accepted) == expected_keys(paths)


@postgres_only
def test_an_idle_worker_holds_no_database_connection(worker_pool, fast_receiver):
    """With the default CONN_MAX_AGE = 0 a job's connection closes when the job ends, as a
    request's does: idle workers do not pin PostgreSQL connections."""
    pool = worker_pool()
    pool.start(2)
    make_endpoints(fast_receiver, ENDPOINTS)
    with transaction.atomic():
        django_hooks.send_event("order.paid", {"id": 1})
    quiet(pool)
    assert status_counts() == {"succeeded": ENDPOINTS}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        assert cursor.fetchone()[0] == 0
