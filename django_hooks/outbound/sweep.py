"""Recovery: put every due delivery that has no live job back on the queue."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import QueueUnavailable
from django_hooks.models import Delivery, Endpoint
from django_hooks.outbound.tasks import wake

DEFAULT_GRACE = 60  # seconds a due delivery may wait for its own job before the sweep steps in


def stranded_deliveries(
    *, now: dt.datetime | None = None, grace: float = DEFAULT_GRACE
) -> QuerySet[Delivery]:
    """Pending deliveries overdue by ``grace`` seconds, not held by a worker, endpoint receiving.

    A delivery lands here when Redis lost its job (flushed, restarted without persistence), when
    enqueueing failed after commit, or when its worker died mid-attempt and the lease ran out.
    """
    now = now or timezone.now()
    return Delivery.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=now - dt.timedelta(seconds=grace),
        endpoint__is_active=True,
        endpoint__disabled_at__isnull=True,
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


def retry_deliveries(deliveries: QuerySet[Delivery]) -> int:
    """Send failed or cancelled deliveries again from now on (attempts continue counting)."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            deliveries.exclude(status__in=[Delivery.Status.SUCCEEDED, Delivery.Status.PENDING])
            .select_for_update()
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.PENDING, next_attempt_at=now, completed_at=None,
            locked_until=None, claim_token=None,
        )  # fmt: skip
        if ids:
            transaction.on_commit(wake)
    return len(ids)


def enable_endpoint(endpoint: Endpoint) -> int:
    """Re-enable an endpoint and resume its pending deliveries; return how many resume."""
    now = timezone.now()
    with transaction.atomic():
        Endpoint.objects.filter(pk=endpoint.pk).update(
            is_active=True, disabled_at=None, disabled_reason="", disabled_by="",
            failing_since=None, paused_until=None, circuit_failures=0, updated_at=now,
        )  # fmt: skip
        endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = True, None, ""
        endpoint.disabled_by = ""
        endpoint.failing_since, endpoint.paused_until, endpoint.circuit_failures = None, None, 0
        pending = Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING)
        pending.filter(next_attempt_at__lt=now).update(next_attempt_at=now)
        ids = list(pending.filter(next_attempt_at__lte=now).values_list("pk", flat=True))
        if ids:
            transaction.on_commit(wake)
    return len(ids)


def cancel_deliveries(deliveries: QuerySet[Delivery]) -> int:
    """Stop pending deliveries for good (e.g. those of an endpoint that will not come back)."""
    now = timezone.now()
    return deliveries.filter(status=Delivery.Status.PENDING).update(
        status=Delivery.Status.CANCELLED, completed_at=now, next_attempt_at=None,
        locked_until=None, claim_token=None,
    )  # fmt: skip
