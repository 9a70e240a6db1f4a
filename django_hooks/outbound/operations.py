"""What operators do to endpoints, shared by the admin, the REST API and the commands:
send a test event, recover failed deliveries, and count outcomes.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.core.payload import encode_body
from django_hooks.exceptions import EndpointNotReceiving
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.outbound.sweep import retry_deliveries


def send_test_event(
    endpoint: Endpoint, *, event_type: str | None = None, data: Any = None
) -> Event:
    """Send one test event (``TEST_EVENT_TYPE``) to this endpoint alone, whatever it subscribes to.

    Raises ``EndpointNotReceiving`` for an inactive or disabled endpoint: nothing would be sent.
    """
    if not endpoint.is_receiving:
        state = "disabled" if endpoint.disabled_at else "inactive"
        raise EndpointNotReceiving(
            f"Endpoint {endpoint.pk} is {state}; enable it before sending a test event."
        )
    from django_hooks.outbound.dispatch import validate_event_type

    event_type = event_type or hooks_settings.TEST_EVENT_TYPE
    validate_event_type(event_type)
    if data is None:
        data = {"endpoint_id": endpoint.pk, "message": "A test event sent by django-hooks."}
    now = timezone.now()
    encode_body(event_type, now, data, max_bytes=hooks_settings.MAX_PAYLOAD_BYTES)
    with transaction.atomic():
        event = Event(type=event_type, data=data, created_at=now)
        event.owner = endpoint.owner
        event.save(force_insert=True)
        delivery = Delivery.objects.create(
            event=event, endpoint=endpoint, next_attempt_at=now, created_at=now
        )
        from django_hooks.outbound.tasks import enqueue_deliveries

        transaction.on_commit(functools.partial(enqueue_deliveries, [delivery.pk]))
    return event


def recover_deliveries(
    endpoint: Endpoint, since: dt.datetime, until: dt.datetime | None = None
) -> int:
    """Send again every failed delivery of ``endpoint`` created in ``[since, until)``.

    As Svix's "recover": one call brings an endpoint that was down back up to date. Returns how
    many deliveries were queued again.
    """
    if until is not None and until <= since:
        raise ValueError("until must be later than since")
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
        counts[row["endpoint_id"]] = DeliveryCounts(
            **{status.value: row[status.value] for status in Delivery.Status}  # type: ignore[literal-required]
        )
    return counts
