"""Deleting what is past its retention: stored inbound calls, and finished events with their
deliveries and attempts. Batched, and safe while workers run: nothing still pending is touched."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import InvalidArgument
from django_hooks.models import Delivery, DeliveryAttempt, Event, InboundWebhook

__all__: list[str] = []


def prune(
    *,
    now: dt.datetime | None = None,
    older_than: dt.timedelta | None = None,
    batch_size: int = 1000,
) -> dict[str, int]:
    """Delete inbound calls older than INBOUND_RETENTION (except ones still waiting to run) and
    events older than EVENT_RETENTION with no pending delivery, with their deliveries and
    attempts. ``older_than`` replaces both retentions. Returns what was deleted, by kind."""
    if batch_size < 1:
        raise InvalidArgument("batch_size must be at least 1")
    if older_than is not None and older_than < dt.timedelta(0):
        raise InvalidArgument("older_than cannot be negative")
    now = now or timezone.now()
    counts = {"inbound": 0, "events": 0, "deliveries": 0, "attempts": 0}
    inbound_age = _age(older_than, hooks_settings.INBOUND_RETENTION)
    if inbound_age is not None:
        counts["inbound"] = prune_inbound(now - inbound_age, batch_size)
    event_age = _age(older_than, hooks_settings.EVENT_RETENTION)
    if event_age is not None:
        for kind, n in prune_events(now - event_age, batch_size).items():
            counts[kind] += n
    return counts


def _age(older_than: dt.timedelta | None, retention: float | None) -> dt.timedelta | None:
    if older_than is not None:
        return older_than
    return None if retention is None else dt.timedelta(seconds=retention)


def prune_inbound(cutoff: dt.datetime, batch_size: int) -> int:
    """Delete handled (processed or failed) inbound calls received before ``cutoff``."""
    handled = InboundWebhook.objects.filter(received_at__lt=cutoff).exclude(
        status=InboundWebhook.Status.RECEIVED
    )
    total = 0
    while True:
        ids = list(handled.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        # The conditions again in the DELETE: a call reprocessed meanwhile is kept.
        deleted, _ = handled.filter(pk__in=ids).delete()
        total += deleted


def prune_events(cutoff: dt.datetime, batch_size: int) -> dict[str, int]:
    """Delete events created before ``cutoff`` none of whose deliveries is pending."""
    pending = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
    finished = Event.objects.filter(created_at__lt=cutoff).exclude(Exists(pending))
    counts = {"events": 0, "deliveries": 0, "attempts": 0}
    while True:
        ids = list(finished.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            # Lock the batch's deliveries: a retry (which also locks them) either ran first and
            # its event is kept, or waits and then finds nothing to retry.
            locked = list(
                Delivery.objects.select_for_update()
                .filter(event_id__in=ids)
                .values_list("event_id", "status")
            )
            kept = {event_id for event_id, status in locked if status == Delivery.Status.PENDING}
            doomed = [pk for pk in ids if pk not in kept]
            # (An event kept here has a pending delivery now, so the next batch skips it.)
            attempts, _ = DeliveryAttempt.objects.filter(delivery__event_id__in=doomed).delete()
            # only("pk"): deleting must not load each event's payload into memory.
            _, deliveries = Delivery.objects.filter(event_id__in=doomed).only("pk").delete()
            _, events = Event.objects.filter(pk__in=doomed).only("pk").delete()
        counts["attempts"] += attempts
        counts["deliveries"] += deliveries.get(Delivery._meta.label, 0)
        counts["events"] += events.get(Event._meta.label, 0)
    return counts


def delete_deliveries(deliveries: QuerySet[Delivery], batch_size: int = 1000) -> dict[str, int]:
    """Delete deliveries and their attempts in batches, never loading more than a batch (the
    ORM's cascade would load every row first: deleting a busy endpoint would exhaust memory)."""
    counts = {"deliveries": 0, "attempts": 0}
    while True:
        ids = list(deliveries.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return counts
        with transaction.atomic():
            attempts, _ = DeliveryAttempt.objects.filter(delivery_id__in=ids).delete()
            _, deleted = Delivery.objects.filter(pk__in=ids).only("pk").delete()
        counts["attempts"] += attempts
        counts["deliveries"] += deleted.get(Delivery._meta.label, 0)
