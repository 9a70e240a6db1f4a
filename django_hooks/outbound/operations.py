"""What operators do to endpoints, shared by the admin, the REST API and the commands:
send a test event, recover failed deliveries, and count outcomes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncHour
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.core.payload import encode_body
from django_hooks.event_types import check_declared, declared_event_types, validate_event_type
from django_hooks.exceptions import EndpointNotReceiving, InvalidArgument, InvalidEventType
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event
from django_hooks.outbound.state import retry_deliveries
from django_hooks.outbound.wakeups import wake

__all__ = ["recover_deliveries", "send_test_event"]


def send_test_event(
    endpoint: Endpoint, *, event_type: str | None = None, data: Any = None
) -> Event:
    """Send one test event (``TEST_EVENT_TYPE``) to this endpoint alone, whatever it subscribes to.

    Raises ``EndpointNotReceiving`` for an inactive or disabled endpoint (nothing would be sent),
    and ``InvalidEventType`` for a type ``STRICT_EVENT_TYPES`` refuses, whoever calls.
    """
    if not endpoint.is_receiving:
        state = "disabled" if endpoint.disabled_at else "inactive"
        raise EndpointNotReceiving(
            f"Endpoint {endpoint.pk} is {state}; enable it before sending a test event."
        )

    event_type = event_type or hooks_settings.TEST_EVENT_TYPE
    validate_event_type(event_type)
    check_declared(event_type)  # STRICT_EVENT_TYPES, as send_event
    if data is None:
        data = test_data(endpoint, event_type)
    now = timezone.now()
    encode_body(event_type, now, data, max_bytes=hooks_settings.MAX_PAYLOAD_BYTES)
    with transaction.atomic():
        event = Event(type=event_type, data=data, created_at=now, is_test=True)
        event.owner = endpoint.owner
        event.save(force_insert=True)
        Delivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now)
        transaction.on_commit(wake)
    return event


def test_data(endpoint: Endpoint, event_type: str) -> Any:
    """What a test send of ``event_type`` carries: the test event's message, or the declared
    type's example; ``InvalidEventType`` for any other type."""
    if event_type == hooks_settings.TEST_EVENT_TYPE:
        return {"endpoint_id": endpoint.pk, "message": "A test event sent by django-hooks."}
    declared = declared_event_types().get(event_type)
    if declared is None or declared.example is None:
        raise InvalidEventType(
            f"A test event is {hooks_settings.TEST_EVENT_TYPE!r} or a declared event type with an "
            f"example; {event_type!r} has none (declare one: register_event_type(..., example=))."
        )
    return declared.example


def recover_deliveries(
    endpoint: Endpoint, since: dt.datetime, until: dt.datetime | None = None
) -> int:
    """Send again every failed delivery of ``endpoint`` created in ``[since, until)``.

    As Svix's "recover": one call brings an endpoint that was down back up to date. Returns how
    many deliveries were queued again.
    """
    if until is not None and until <= since:
        raise InvalidArgument("until must be later than since")
    failed = Delivery.objects.filter(
        endpoint=endpoint, status=Delivery.Status.FAILED, created_at__gte=since
    )
    if until is not None:
        failed = failed.filter(created_at__lt=until)
    return retry_deliveries(failed)


@dataclass(frozen=True)
class DeliveryCounts:
    """How an endpoint's deliveries created in a window ended up."""

    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.pending + self.cancelled

    @property
    def success_rate(self) -> float | None:
        """Succeeded over finished (succeeded + failed), or None when nothing has finished."""
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None


def delivery_counts(
    endpoint_ids: Iterable[int], *, since: dt.datetime, until: dt.datetime | None = None
) -> dict[int, DeliveryCounts]:
    """Delivery outcomes per endpoint for deliveries created in the window: one query."""
    ids = list(endpoint_ids)
    if not ids:
        return {}
    window = Q(endpoint_id__in=ids, created_at__gte=since)
    if until is not None:
        window &= Q(created_at__lt=until)
    rows = (
        Delivery.objects.filter(window)
        .values("endpoint_id")
        .annotate(
            **{
                status.value: Count("pk", filter=Q(status=status.value))
                for status in Delivery.Status
            }
        )
        .order_by()
    )
    counts = {pk: DeliveryCounts() for pk in ids}
    for row in rows:
        values: dict[str, Any] = dict(row)
        endpoint_id = values.pop("endpoint_id")
        counts[endpoint_id] = DeliveryCounts(**values)
    return counts


@dataclass(frozen=True)
class HourlyCounts:
    """Deliveries created in one hour that succeeded or failed (pending ones are still open)."""

    hour: dt.datetime
    succeeded: int = 0
    failed: int = 0


def hourly_delivery_counts(
    endpoint: Endpoint, *, hours: int = 48, now: dt.datetime | None = None
) -> list[HourlyCounts]:
    """Succeeded and failed deliveries per hour over the last ``hours`` hours, oldest first,
    one entry per hour (empty hours included): one query."""
    now = now or timezone.now()
    current = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    first = current - dt.timedelta(hours=hours - 1)
    rows = (
        Delivery.objects.filter(
            endpoint=endpoint,
            created_at__gte=first,
            status__in=[Delivery.Status.SUCCEEDED, Delivery.Status.FAILED],
        )
        .annotate(hour=TruncHour("created_at", tzinfo=dt.UTC))
        .values("hour")
        .annotate(
            succeeded=Count("pk", filter=Q(status=Delivery.Status.SUCCEEDED)),
            failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
        )
        .order_by()
    )
    by_hour: dict[dt.datetime, dict[str, Any]] = {row["hour"]: dict(row) for row in rows}
    series = []
    for offset in range(hours):
        hour = first + dt.timedelta(hours=offset)
        found = by_hour.get(hour, {})
        series.append(HourlyCounts(hour, found.get("succeeded", 0), found.get("failed", 0)))
    return series


@dataclass(frozen=True)
class Latency:
    """Attempt durations in milliseconds over a window; None when there was no attempt."""

    attempts: int
    p50: int | None
    p95: int | None


def attempt_latency(
    endpoint_ids: Iterable[int], *, since: dt.datetime, until: dt.datetime | None = None
) -> dict[int, Latency]:
    """p50 and p95 duration of the HTTP attempts made to each endpoint in the window.

    Computed by the database (a count, then the two ranks by ``ORDER BY ... OFFSET``), so a
    busy endpoint's durations are never loaded into memory.
    """
    ids = list(endpoint_ids)
    window = Q(delivery__endpoint_id__in=ids, created_at__gte=since)
    if until is not None:
        window &= Q(created_at__lt=until)
    attempts = DeliveryAttempt.objects.filter(window)
    totals = dict(
        attempts.values("delivery__endpoint_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("delivery__endpoint_id", "n")
    )
    result = {}
    for pk in ids:
        total = totals.get(pk, 0)
        if not total:
            result[pk] = Latency(0, None, None)
            continue
        durations = attempts.filter(delivery__endpoint_id=pk).order_by("duration_ms")
        ranks = [
            durations.values_list("duration_ms", flat=True)[nearest_rank(q, total)]
            for q in (0.5, 0.95)
        ]
        result[pk] = Latency(total, ranks[0], ranks[1])
    return result


def nearest_rank(quantile: float, total: int) -> int:
    """Zero-based index of the ``quantile`` of ``total`` sorted values (nearest-rank method)."""
    return max(0, min(total - 1, math.ceil(quantile * total) - 1))


def find_deliveries(
    *,
    endpoint_ids: Iterable[int] | None = None,
    statuses: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Delivery]:
    """Deliveries by endpoint, status and creation time ``[since, until)``: what ``hooks_retry``
    and the stats act on."""
    deliveries = Delivery.objects.all()
    if endpoint_ids is not None:
        deliveries = deliveries.filter(endpoint_id__in=list(endpoint_ids))
    if statuses is not None:
        deliveries = deliveries.filter(status__in=list(statuses))
    if since is not None:
        deliveries = deliveries.filter(created_at__gte=since)
    if until is not None:
        deliveries = deliveries.filter(created_at__lt=until)
    return deliveries


def last_attempts(delivery_ids: list[int]) -> dict[int, DeliveryAttempt]:
    """The latest attempt of each delivery: one query."""
    latest: dict[int, DeliveryAttempt] = {}
    attempts = (
        DeliveryAttempt.objects.filter(delivery_id__in=delivery_ids)
        .only("delivery_id", "number", "status_code", "error", "created_at")
        .order_by("delivery_id", "number")
    )
    for attempt in attempts:
        latest[attempt.delivery_id] = attempt
    return latest


def latest_attempted_delivery() -> Subquery:
    """The endpoint's most recent delivery that has been attempted, by the (endpoint, created_at)
    index. No pk tie-breaker: ordered by id, PostgreSQL would walk the primary key instead,
    reading every other endpoint's deliveries for one that has none (a minute per list page at
    1M deliveries). ``benchmarks/admin_lists.py`` measures it."""
    deliveries = Delivery.objects.filter(endpoint=OuterRef("pk"), attempts__gt=0)
    return Subquery(deliveries.order_by("-created_at").values("pk")[:1])
