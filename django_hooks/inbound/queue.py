"""Queueing stored inbound calls' handler runs: on which queue, how often retried, and the
commands' reprocess and sweep. (The job itself is ``django_hooks.inbound.tasks.process_call``.)"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import QueueUnavailable
from django_hooks.internal import queue
from django_hooks.models import INBOUND_LEASE, InboundWebhook

__all__: list[str] = []

logger = logging.getLogger("django_hooks.inbound")

#: The job, by path: RQ imports it in the worker, and this module stays below the handlers.
PROCESS_CALL = "django_hooks.inbound.tasks.process_call"

#: Seconds RQ lets one handler run: less than the call's lease, so that no other worker takes
#: a call whose handler is still running.
JOB_TIMEOUT = INBOUND_LEASE - 30


def queue_name() -> str:
    """The queue inbound handlers run on: ``INBOUND_QUEUE``, else the deliveries' ``QUEUE``."""
    return hooks_settings.INBOUND_QUEUE or hooks_settings.QUEUE


def retry_schedule() -> list[float]:
    schedule = hooks_settings.INBOUND_RETRY_SCHEDULE
    return hooks_settings.RETRY_SCHEDULE if schedule is None else schedule


def enqueue_calls(record_ids: list[int], delay: float = 0) -> int:
    """Queue the handlers of stored calls; return how many. ``QueueUnavailable`` if Redis is
    unreachable (the calls stay stored, for ``hooks_sweep``)."""
    return queue.enqueue(
        queue_name(),
        PROCESS_CALL,
        [(pk,) for pk in record_ids],
        delay=delay,
        job_timeout=JOB_TIMEOUT,
        result_ttl=0,
    )


def enqueue_call(record_id: int, delay: float = 0) -> None:
    """Queue one stored call's handler after the request (or a failed run): Redis being
    unreachable is logged, and the call waits for the sweep."""
    try:
        enqueue_calls([record_id], delay)
    except QueueUnavailable as exc:
        logger.warning("Inbound webhook %s waits for hooks_sweep: %s", record_id, exc)


def stranded_calls(*, grace: float = 60) -> Any:
    """Calls whose handler never finished: queued jobs Redis lost, or runs that died mid-way."""
    now = timezone.now()
    return InboundWebhook.objects.filter(
        status=InboundWebhook.Status.RECEIVED, received_at__lte=now - dt.timedelta(seconds=grace)
    ).claimable(now)


def reprocess(records: Any) -> int:
    """Run stored calls again (any status) on the queue; return how many were queued.

    ``QueueUnavailable`` if Redis is unreachable: the calls are then marked to run again and
    the sweep queues them once Redis is back.
    """
    ids = list(records.values_list("pk", flat=True))
    InboundWebhook.objects.filter(pk__in=ids).update(
        status=InboundWebhook.Status.RECEIVED, error="", locked_until=None
    )
    return enqueue_calls(ids)


def sweep_calls(*, grace: float = 60, limit: int = 10_000) -> int:
    """Enqueue stranded calls' handlers again (``hooks_sweep`` runs this); return how many.
    ``QueueUnavailable`` if Redis is unreachable."""
    ids = list(
        stranded_calls(grace=grace).order_by("received_at").values_list("pk", flat=True)[:limit]
    )
    return enqueue_calls(ids)
