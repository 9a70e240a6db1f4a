"""The RQ side of delivery: enqueueing batches and the job that runs them.

Every ``rq``/``django_rq`` import of the outbound path lives here, so the rest is queue-agnostic.
Jobs carry delivery ids, never objects; the database stays the source of truth, and a job that
Redis loses is re-created by ``hooks_sweep``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import django_rq
from django.db import connections
from django.utils import timezone
from rq import Queue

from django_hooks.conf import hooks_settings
from django_hooks.outbound.delivery import deliver_batch, lease_seconds

logger = logging.getLogger("django_hooks")

_local = threading.local()


def get_queue() -> Queue:
    """The delivery queue; one Redis connection pool per process and settings state."""
    name = hooks_settings.QUEUE
    cached = getattr(_local, "queue", None)
    if cached is None or cached.name != name:
        cached = _local.queue = django_rq.get_queue(name)
    return cached


def reset() -> None:
    _local.queue = None


def _job_options(batch_size: int) -> dict[str, Any]:
    # result_ttl=0: the outcome lives in the database; Redis keeps nothing once a job is done.
    return {"timeout": lease_seconds(batch_size), "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}


def enqueue_deliveries(delivery_ids: Sequence[int]) -> int:
    """Enqueue jobs of at most ``BATCH_SIZE`` deliveries; return how many jobs were enqueued.

    A Redis failure is logged, not raised: the deliveries wait in the database for the sweep.
    """
    size = max(1, int(hooks_settings.BATCH_SIZE))
    batches = [list(delivery_ids[i : i + size]) for i in range(0, len(delivery_ids), size)]
    if not batches:
        return 0
    try:
        queue = get_queue()
        queue.enqueue_many(
            [
                Queue.prepare_data(deliver, args=(batch,), **_job_options(len(batch)))
                for batch in batches
            ]
        )
    except Exception:
        reset()
        logger.warning(
            "Could not enqueue %d webhook deliveries; they stay pending until hooks_sweep "
            "enqueues them.",
            len(delivery_ids),
            exc_info=True,
        )
        return 0
    return len(batches)


def oldest_queued_at() -> dt.datetime | None:
    """When the job at the head of the delivery queue was enqueued (None: the queue is empty)."""
    queue = get_queue()
    for job_id in queue.get_job_ids(0, 1):
        job = queue.fetch_job(job_id)
        if job is not None and job.enqueued_at is not None:
            when = job.enqueued_at
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


def schedule_retries(retries: Iterable[tuple[int, dt.datetime]]) -> None:
    """Enqueue retries at their time, one job per second of the schedule."""
    by_second: dict[int, list[int]] = {}
    for delivery_id, when in retries:
        by_second.setdefault(math.ceil(when.timestamp()), []).append(delivery_id)
    if not by_second:
        return
    now = timezone.now().timestamp()
    try:
        queue = get_queue()
        for second, ids in sorted(by_second.items()):
            if second <= now:
                enqueue_deliveries(ids)
            else:
                when = dt.datetime.fromtimestamp(second, tz=dt.UTC)
                options = _job_options(len(ids))
                options["job_timeout"] = options.pop("timeout")
                queue.enqueue_at(when, deliver, ids, **options)
    except Exception:
        reset()
        logger.warning("Could not schedule webhook retries; hooks_sweep will.", exc_info=True)


def close_stale_connections() -> None:
    """Close database connections that are broken or past ``CONN_MAX_AGE``, as Django does
    around each request; never one inside a transaction (a test's, or a caller's)."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """The RQ job: attempt a batch of deliveries and schedule their retries."""
    # As Django does around each request: a worker lives for weeks, and a connection the
    # database dropped meanwhile (restart, failover, idle timeout) would fail every later job.
    close_stale_connections()
    try:
        result = deliver_batch(delivery_ids)
    finally:
        close_stale_connections()
    schedule_retries(result.retries)
    return {
        "attempted": result.attempted,
        "succeeded": len(result.succeeded),
        "failed": len(result.failed),
        "retrying": len(result.retries),
    }
