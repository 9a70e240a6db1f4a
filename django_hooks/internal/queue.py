"""The queue plumbing both directions share: django-rq's queues, their Redis, one ``enqueue``.

Outbound drains and inbound handler runs are both RQ jobs on queues named in ``RQ_QUEUES``.
Whatever the direction, Redis being unreachable is one exception, ``QueueUnavailable``: callers
on the request path log it and leave the work to the sweep (the database holds it); commands
let it through, so they never say "queued" when nothing was.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import django_rq
from django.conf import settings
from django.db import connections
from rq import Queue

from django_hooks.exceptions import QueueUnavailable

__all__: list[str] = []

_lock = threading.Lock()
# name -> (its RQ_QUEUES entry as it was read, queue, what callers derived from it): a queue is
# rebuilt when its settings change (override_settings, or the entry edited in place), so
# nothing has to reset this cache, and what was derived from the old one goes with it.
_queues: dict[str, tuple[str, Queue, dict[str, Any]]] = {}


def queue_settings(name: str) -> str:
    return repr(getattr(settings, "RQ_QUEUES", {}).get(name))


def get_queue(name: str) -> Queue:
    """The django-rq queue ``name``; one connection pool per process and queue settings."""
    config = queue_settings(name)
    cached = _queues.get(name)
    if cached is not None and cached[0] == config:
        return cached[1]
    queue = django_rq.get_queue(name)
    with _lock:
        _queues[name] = (config, queue, {})
    return queue


def derived(queue: Queue) -> dict[str, Any]:
    """A dict for what a caller builds once per queue (a registered script); dropped with it."""
    cached = _queues.get(queue.name)
    if cached is not None and cached[1] is queue:
        return cached[2]
    return {}


def forget(queue: Queue) -> None:
    """Drop a queue whose Redis failed, so that the next use connects afresh."""
    with _lock:
        cached = _queues.get(queue.name)
        if cached is not None and cached[1] is queue:
            del _queues[queue.name]


def enqueue(
    name: str,
    func: Any,  # a function, or its dotted path (RQ imports it in the worker)
    calls: Iterable[Sequence[Any]],
    *,
    delay: float = 0,
    **job_options: Any,
) -> int:
    """Enqueue ``func(*args)`` for each ``args`` of ``calls`` on queue ``name`` in one round
    trip (``delay`` seconds from now, on RQ's scheduler); return how many jobs were enqueued.

    Raises ``QueueUnavailable`` when Redis cannot be reached (nothing was enqueued).
    """
    calls = list(calls)
    if not calls:
        return 0
    queue = get_queue(name)
    try:
        if not queue._is_async:  # django-rq's "ASYNC": False runs each job inline, here
            for args in calls:
                queue.enqueue(func, *args, **job_options)
            return len(calls)
        with queue.connection.pipeline() as pipe:
            for args in calls:
                if delay > 0:
                    queue.enqueue_in(
                        dt.timedelta(seconds=delay), func, *args, pipeline=pipe, **job_options
                    )
                else:
                    queue.enqueue(func, *args, pipeline=pipe, **job_options)
            pipe.execute()
    except Exception as exc:
        forget(queue)
        raise QueueUnavailable(queue.name, exc) from exc
    return len(calls)


def close_stale_connections() -> None:
    """Close database connections that are broken or past ``CONN_MAX_AGE``, as Django does
    around each request; never one inside a transaction (a test's, or a caller's). Jobs call
    it before and after running: a worker lives for weeks, and a connection the database
    dropped meanwhile (restart, failover, idle timeout) would fail every later job."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
