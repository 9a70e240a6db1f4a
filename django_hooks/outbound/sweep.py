"""Recovery: put every due delivery that has no live job back on the queue."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import QueueUnavailable
from django_hooks.models import Delivery
from django_hooks.outbound.wakeups import wake

__all__: list[str] = []

DEFAULT_GRACE = 60  # seconds a due delivery may wait for its own job before the sweep steps in


def stranded_deliveries(
    *, now: dt.datetime | None = None, grace: float = DEFAULT_GRACE
) -> QuerySet[Delivery]:
    """Pending deliveries overdue by ``grace`` seconds, not held by a worker, endpoint receiving.

    A delivery lands here when Redis lost its job (flushed, restarted without persistence), when
    enqueueing failed after commit, or when its worker died mid-attempt and the lease ran out.
    """
    now = now or timezone.now()
    return (
        Delivery.objects.due(now - dt.timedelta(seconds=grace)).unheld(now).to_receiving_endpoints()
    )


def sweep(
    *, now: dt.datetime | None = None, grace: float = DEFAULT_GRACE, limit: int = 10_000
) -> int:
    """Wake a drain if deliveries are stranded; return how many are (at most ``limit``).

    One wake-up serves them all: a drain takes every due delivery. Redis being unreachable
    raises ``QueueUnavailable``, so ``hooks_sweep`` can say that nothing was enqueued.
    """
    count = len(stranded_deliveries(now=now, grace=grace).values_list("pk", flat=True)[:limit])
    if count and not wake():
        raise QueueUnavailable(hooks_settings.QUEUE)
    return count
