"""The endpoint list's last-attempt column, without importing the admin (a host may run the
portal without ``django.contrib.admin``). The same two queries as the admin's endpoint list;
the 24 h figures and the chart come from ``outbound.operations`` and ``internal.chart``."""

from __future__ import annotations

from django.db import models

from django_hooks.models import Delivery, DeliveryAttempt

__all__: list[str] = []


def latest_attempted_delivery() -> models.Subquery:
    """The endpoint's most recent attempted delivery, by the (endpoint, created_at) index (no pk
    tie-breaker: PostgreSQL would then walk the primary key, as the admin's note explains)."""
    deliveries = Delivery.objects.filter(endpoint=models.OuterRef("pk"), attempts__gt=0)
    return models.Subquery(deliveries.order_by("-created_at").values("pk")[:1])


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
