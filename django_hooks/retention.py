"""Deleting what is past its retention: stored inbound calls and finished events."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.models import Delivery, Event, InboundWebhook


def _delete_in_batches(queryset, batch_size: int) -> int:  # type: ignore[no-untyped-def]
    total = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        queryset.model.objects.filter(pk__in=ids).delete()
        total += len(ids)


def prune(*, now: dt.datetime | None = None, batch_size: int = 1000) -> dict[str, int]:
    """Delete inbound calls older than INBOUND_RETENTION (except ones still waiting to run) and
    events older than EVENT_RETENTION with no pending delivery (with their deliveries)."""
    now = now or timezone.now()
    counts = {"inbound": 0, "events": 0}
    if hooks_settings.INBOUND_RETENTION is not None:
        cutoff = now - dt.timedelta(seconds=hooks_settings.INBOUND_RETENTION)
        old_calls = InboundWebhook.objects.filter(received_at__lt=cutoff).exclude(
            status=InboundWebhook.Status.RECEIVED
        )
        counts["inbound"] = _delete_in_batches(old_calls, batch_size)
    if hooks_settings.EVENT_RETENTION is not None:
        cutoff = now - dt.timedelta(seconds=hooks_settings.EVENT_RETENTION)
        pending = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
        old_events = Event.objects.filter(created_at__lt=cutoff).exclude(Exists(pending))
        counts["events"] = _delete_in_batches(old_events, batch_size)
    return counts
