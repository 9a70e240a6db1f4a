"""Leasing deliveries to workers: which due deliveries a worker may take, and for how long.

A worker takes due deliveries from the database itself, oldest due first, as many as it has
free slots, so batches are full whatever transactions recorded them. A claim sets
``claim_token`` (one per running drain) and ``locked_until`` (a short lease, renewed while the
worker lives); a killed worker's deliveries become claimable again once the lease runs out.

Claims are serialised per database (a transaction-level advisory lock on PostgreSQL, the write
lock on SQLite), which makes the per-endpoint limits hold across workers: an endpoint gets at
most its ``max_concurrency`` (or ``ENDPOINT_CONCURRENCY``) claims at once, one probe while its
circuit is half open, and at most ``rate_limit`` claims per second. The claim transaction is
a handful of indexed queries, short next to the attempts it hands out.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.models import Delivery, Endpoint

__all__: list[str] = []

#: The advisory lock claimers take on PostgreSQL (any constant; "hooks" in ASCII).
CLAIM_LOCK = 0x686F6F6B73
#: Candidate rows read per claim, per free slot: room to skip endpoints at their limit.
WINDOW_FACTOR = 4


def lease_seconds() -> float:
    return float(hooks_settings.LEASE)


def lease_until(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=lease_seconds())


def endpoint_limit(max_concurrency: int | None, circuit_failures: int) -> int:
    """Attempts one endpoint may have in flight: one probe while its circuit is half open."""
    if circuit_failures:
        return 1
    if max_concurrency:
        return int(max_concurrency)
    return max(1, int(hooks_settings.ENDPOINT_CONCURRENCY))


@dataclass
class _Candidate:
    pk: int
    endpoint_id: int
    max_concurrency: int | None
    rate_limit: int | None
    circuit_failures: int


def _serialise_claims(token: uuid.UUID, now: dt.datetime) -> None:
    """Take the claim lock, so the reads below see every other claim. PostgreSQL: an advisory
    lock. SQLite: the database's write lock, which ``BEGIN IMMEDIATE`` (the ``transaction_mode``
    the docs advise) has taken already; otherwise the first write takes it, so the transaction
    starts by renewing this drain's own leases."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK])
    elif connection.vendor != "sqlite" or _sqlite_mode() != "IMMEDIATE":
        renew(token, now=now)


def _sqlite_mode() -> str:
    return str(connection.settings_dict.get("OPTIONS", {}).get("transaction_mode", "")).upper()


def in_flight_by_endpoint(now: dt.datetime) -> dict[int, tuple[int, int | None, int]]:
    """Claims still held, per endpoint, with the endpoint's limit inputs: ``{endpoint: (count,
    max_concurrency, circuit_failures)}`` in one query (the partial index on ``claim_token``
    keeps it small)."""
    rows = (
        Delivery.objects.filter(
            claim_token__isnull=False, locked_until__gte=now, status=Delivery.Status.PENDING
        )
        .values("endpoint_id", "endpoint__max_concurrency", "endpoint__circuit_failures")
        .annotate(n=Count("pk"))
        .values_list("endpoint_id", "n", "endpoint__max_concurrency", "endpoint__circuit_failures")
    )
    return {pk: (n, limit, failures) for pk, n, limit, failures in rows}


def claim(
    token: uuid.UUID,
    slots: int,
    *,
    now: dt.datetime | None = None,
    only: Iterable[int] | None = None,
) -> list[Delivery]:
    """Lease up to ``slots`` due deliveries to ``token``, oldest due first, within every
    endpoint's limits; return them with their event and endpoint loaded."""
    if slots <= 0:
        return []
    now = now or timezone.now()
    with transaction.atomic():
        _serialise_claims(token, now)
        held = in_flight_by_endpoint(now)
        busy = {pk: count for pk, (count, _, _) in held.items()}
        full = {
            pk
            for pk, (count, max_concurrency, failures) in held.items()
            if count >= endpoint_limit(max_concurrency, failures)
        }
        due = (
            Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .filter(endpoint__is_active=True, endpoint__disabled_at__isnull=True)
            .filter(Q(endpoint__paused_until__isnull=True) | Q(endpoint__paused_until__lte=now))
        )
        if only is not None:
            due = due.filter(pk__in=list(only))
        if full:
            due = due.exclude(endpoint_id__in=full)
        if connection.features.has_select_for_update_skip_locked:
            # Rows another transaction is changing (an operator's retry, a results write) are
            # skipped rather than waited for.
            due = due.select_for_update(skip_locked=True, of=("self",))
        window = due.order_by("next_attempt_at", "pk").values_list(
            "pk",
            "endpoint_id",
            "endpoint__max_concurrency",
            "endpoint__rate_limit",
            "endpoint__circuit_failures",
        )[: slots * WINDOW_FACTOR]
        picked: list[int] = []
        taken: dict[int, int] = {}
        rate_limited: dict[int, int] = {}
        for row in window:
            candidate = _Candidate(*row)
            endpoint_id = candidate.endpoint_id
            allowed = endpoint_limit(candidate.max_concurrency, candidate.circuit_failures)
            allowed -= busy.get(endpoint_id, 0)
            if candidate.rate_limit:
                allowed = min(allowed, candidate.rate_limit)
            if taken.get(endpoint_id, 0) >= allowed:
                continue
            taken[endpoint_id] = taken.get(endpoint_id, 0) + 1
            if candidate.rate_limit:
                rate_limited[endpoint_id] = candidate.rate_limit
            picked.append(candidate.pk)
            if len(picked) >= slots:
                break
        if not picked:
            return []
        Delivery.objects.filter(pk__in=picked).hold(token, lease_until(now))
        for endpoint_id, rate in rate_limited.items():
            # The next claim for this endpoint waits until these claims fit within its rate.
            pause = dt.timedelta(seconds=taken[endpoint_id] / rate)
            Endpoint.objects.filter(pk=endpoint_id).update(paused_until=now + pause)
    # prefetch rather than select_related: one Event per event and one Endpoint per endpoint
    # however many of their deliveries were claimed (a fan-out shares both), not one per row.
    return list(
        Delivery.objects.filter(pk__in=picked, claim_token=token)
        .prefetch_related("event", "endpoint")
        .order_by("next_attempt_at", "pk")
    )


def renew(token: uuid.UUID, *, now: dt.datetime | None = None) -> int:
    """Extend the lease of every delivery ``token`` still holds (the worker's heartbeat)."""
    return Delivery.objects.renew(token, lease_until(now or timezone.now()))


def release(token: uuid.UUID, delivery_ids: Iterable[int], *, at: dt.datetime | None = None) -> int:
    """Hand deliveries back unattempted, due again at ``at`` (or as they were)."""
    ids = list(delivery_ids)
    if not ids:
        return 0
    return Delivery.objects.filter(pk__in=ids).release(token, at)


def next_due_at(*, now: dt.datetime | None = None) -> dt.datetime | None:
    """When a worker will next have something to do: the soonest future attempt, lease expiry
    or end of an endpoint's pause (None: nothing pending)."""
    now = now or timezone.now()
    pending = Delivery.objects.pending().to_receiving_endpoints()
    times = [
        pending.filter(next_attempt_at__gt=now).aggregate(t=Min("next_attempt_at"))["t"],
        pending.filter(claim_token__isnull=False).aggregate(t=Min("locked_until"))["t"],
        Endpoint.objects.filter(paused_until__gt=now)
        .filter(deliveries__status=Delivery.Status.PENDING)
        .aggregate(t=Min("paused_until"))["t"],
    ]
    found = [t for t in times if t is not None]
    return min(found) if found else None
