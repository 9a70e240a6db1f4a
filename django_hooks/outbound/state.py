"""Every change of an endpoint's or a delivery's state made by a person or a policy (not an
attempt's result): disable, enable, retry, cancel. The row updates are the querysets' own
(``EndpointQuerySet``, ``DeliveryQuerySet``); this adds what goes with them: the signal, the log
line, the wake-up of a worker.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from django_hooks import signals
from django_hooks.models import Delivery, Endpoint
from django_hooks.outbound.wakeups import wake

__all__ = ["cancel_deliveries", "disable_endpoint", "enable_endpoint", "retry_deliveries"]

logger = logging.getLogger("django_hooks")


def disable_endpoint(
    endpoint: Endpoint,
    reason: str = "Disabled by an operator.",
    *,
    by: str = "operator",
    now: dt.datetime | None = None,
) -> bool:
    """Disable ``endpoint``: no new deliveries or attempts until ``enable_endpoint``. Returns
    False when it already was.

    ``by="system"`` is the automatic disable (410 Gone, failing past ``DISABLE_AFTER``): logged,
    and ``endpoint_disabled`` is sent after commit. An operator's (``by="operator"``, the
    default) needs nobody told.
    """
    now = now or timezone.now()
    reason = reason[:255]
    if not Endpoint.objects.filter(pk=endpoint.pk).disable(reason, by=by, now=now):
        return False
    endpoint.disabled_at, endpoint.disabled_reason, endpoint.disabled_by = now, reason, by
    if by == "system":
        logger.warning("Webhook endpoint %s disabled: %s", endpoint.pk, reason)
        transaction.on_commit(
            lambda: signals.endpoint_disabled.send_robust(
                Endpoint, endpoint=endpoint, reason=reason
            )
        )
    return True


def enable_endpoint(endpoint: Endpoint) -> int:
    """Re-enable an endpoint and resume its pending deliveries; return how many resume."""
    now = timezone.now()
    with transaction.atomic():
        Endpoint.objects.filter(pk=endpoint.pk).enable(now=now)
        endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = True, None, ""
        endpoint.disabled_by = ""
        endpoint.failing_since, endpoint.paused_until, endpoint.circuit_failures = None, None, 0
        pending = Delivery.objects.filter(endpoint=endpoint).pending()
        pending.filter(next_attempt_at__lt=now).update(next_attempt_at=now)
        resumed = pending.filter(next_attempt_at__lte=now).count()
        if resumed:
            transaction.on_commit(wake)
    return resumed


def retry_deliveries(deliveries: QuerySet[Delivery]) -> int:
    """Send failed or cancelled deliveries again from now on (attempts continue counting)."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            deliveries.exclude(status__in=[Delivery.Status.SUCCEEDED, Delivery.Status.PENDING])
            .select_for_update()
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).retry(now)
        if ids:
            transaction.on_commit(wake)
    return len(ids)


def cancel_deliveries(deliveries: QuerySet[Delivery]) -> int:
    """Stop pending deliveries for good (e.g. those of an endpoint that will not come back)."""
    return Delivery.objects.filter(pk__in=deliveries.values("pk")).cancel(timezone.now())
