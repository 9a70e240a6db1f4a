"""Every change of an endpoint's or a delivery's state made by a person or a policy (not an
attempt's result): disable, enable (and replay what it missed), retry, cancel. The row updates
are the querysets' own (``EndpointQuerySet``, ``DeliveryQuerySet``); this adds what goes with
them: the signal, the log line, the wake-up of a worker.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.models import (
    CharField,
    DateTimeField,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.utils import timezone

from django_hooks import signals
from django_hooks.event_types import types_q
from django_hooks.exceptions import InvalidArgument
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.outbound.dispatch import insert_deliveries_sql
from django_hooks.outbound.wakeups import wake

__all__ = [
    "Replayed",
    "cancel_deliveries",
    "disable_endpoint",
    "enable_endpoint",
    "replay_missing",
    "retry_deliveries",
]

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


@dataclass(frozen=True)
class Replayed:
    """What ``replay_missing`` did: ``count`` deliveries added for the events created in
    ``[since, until)``; ``enabled`` if it re-enabled the endpoint first."""

    count: int
    since: dt.datetime
    until: dt.datetime
    enabled: bool = False


def replay_missing(
    endpoint: Endpoint, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> Replayed:
    """Send ``endpoint`` the events it would have received while it was disabled: those of its
    owner, matching its subscriptions now, created in ``[since, until)``, that it has no
    delivery of. A disabled (or inactive) endpoint is enabled first.

    The window defaults to the disabled spell: from ``disabled_at`` to now for an endpoint still
    disabled, from ``last_disabled_at`` to ``enabled_at`` for one already re-enabled. One
    ``INSERT ... SELECT`` adds the deliveries, however many; calling it again adds none.
    Raises ``ValueError`` when there is no window (never disabled, and no ``since``).
    """
    now = timezone.now()
    with transaction.atomic():
        # Locked: two replays of one endpoint at once must not both insert the same events.
        current = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        start: dt.datetime | None = current.disabled_at
        end = now
        if start is None:
            start, end = current.last_disabled_at, current.enabled_at or now
        since = since or start
        until = until or (end if since == start else now)
        if since is None:
            raise InvalidArgument(
                f"Endpoint {endpoint.pk} has not been disabled: give the start of the window "
                "to replay (since)."
            )
        if until <= since:
            raise InvalidArgument("until must be later than since")
        enabled = not current.is_receiving
        if enabled:
            enable_endpoint(endpoint)
        # Nothing from before the endpoint existed: it would never have received that.
        count = insert_missing(current, max(since, current.created_at), until, now)
        if count:
            transaction.on_commit(wake)
    logger.info("Replayed %d missed events to webhook endpoint %s", count, endpoint.pk)
    return Replayed(count, since, until, enabled)


def missing_events(endpoint: Endpoint, since: dt.datetime, until: dt.datetime) -> QuerySet[Event]:
    """The owner's events in ``[since, until)`` matching the endpoint's subscriptions, other
    than test sends, that the endpoint has no delivery of (in any state)."""
    if endpoint.owner_content_type_id is None:
        owned = Q(owner_content_type__isnull=True)
    else:
        owned = Q(owner_content_type_id=endpoint.owner_content_type_id, owner_id=endpoint.owner_id)
    delivered = Delivery.objects.filter(event=OuterRef("pk"), endpoint_id=endpoint.pk)
    return Event.objects.filter(
        owned,
        types_q(endpoint.event_types),
        is_test=False,
        created_at__gte=since,
        created_at__lt=until,
    ).exclude(Exists(delivered))


def insert_missing(
    endpoint: Endpoint, since: dt.datetime, until: dt.datetime, now: dt.datetime
) -> int:
    """One ``INSERT INTO delivery ... SELECT`` of ``missing_events``, oldest first; how many."""
    db = router.db_for_write(Delivery)
    when = DateTimeField()
    rows = (
        missing_events(endpoint, since, until)
        .using(db)
        .annotate(
            _endpoint=Value(endpoint.pk, output_field=IntegerField()),
            _status=Value(Delivery.Status.PENDING.value, output_field=CharField()),
            _attempts=Value(0, output_field=IntegerField()),
            _next=Value(now, output_field=when),
            _created=Value(now, output_field=when),
            _error=Value("", output_field=CharField()),
        )
        .order_by("created_at", "pk")
        .values_list("pk", "_endpoint", "_status", "_attempts", "_next", "_created", "_error")
    )
    sql, params = insert_deliveries_sql(rows, db)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)
