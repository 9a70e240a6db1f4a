"""Pieces shared by the webhook ModelAdmins: cheap pagination, readable JSON, one time format."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.html import format_html

from django_hooks.internal.display import show_time
from django_hooks.internal.retention import delete_deliveries
from django_hooks.models import Delivery, DeliveryAttempt

__all__: list[str] = []

COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows: ``SELECT COUNT(*)`` over a million deliveries is the
    slowest query of a list page, and nobody pages past the hundredth page (they filter)."""

    @cached_property
    def count(self) -> int:
        return self.object_list[:COUNT_CAP].count()  # type: ignore[attr-defined]


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON in a ``<pre>`` block (escaped)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="hooks-json">{}</pre>', text)


#: Every time the webhook admin shows: sortable, unambiguous, with its zone (as in logs).
def time_column(field: str, description: str) -> Callable[[Any, Any], str]:
    """A ModelAdmin column or read-only field showing the datetime ``field`` as ``show_time``
    does, sortable by it: Django's own display would use the locale's format instead."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> str:
        return show_time(getattr(obj, field))

    return column


def status_badge(status: str, label: str | None = None) -> str:
    return format_html('<span class="hooks-badge hooks-{}">{}</span>', status, label or status)


class DeletesDeliveriesInBatches:
    """For ModelAdmins of objects that own deliveries (endpoints, events): the delete pages
    summarise the deliveries and attempts by count and delete them in batches, instead of
    listing and loading every one (a busy endpoint has millions)."""

    #: The Delivery field that points at this admin's model.
    delivery_field: str

    def _deliveries(self, objs: Any) -> Any:
        return Delivery.objects.filter(**{f"{self.delivery_field}__in": [o.pk for o in objs]})

    def get_deleted_objects(
        self, objs: Any, request: Any
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        objs = list(objs)
        deliveries = self._deliveries(objs)
        n_deliveries = deliveries.count()
        n_attempts = DeliveryAttempt.objects.filter(delivery__in=deliveries).count()
        opts = self.model._meta  # type: ignore[attr-defined]
        summary: list[Any] = [str(obj) for obj in objs]
        if n_deliveries:
            summary.append(f"{n_deliveries} deliveries, with {n_attempts} attempts")
        model_count = {str(opts.verbose_name_plural): len(objs)}
        if n_deliveries:
            model_count[str(Delivery._meta.verbose_name_plural)] = n_deliveries
            model_count["delivery attempts"] = n_attempts
        perms_needed = set()
        for model in (Delivery, DeliveryAttempt) if n_deliveries else ():
            if not request.user.has_perm(
                f"{model._meta.app_label}.delete_{model._meta.model_name}"
            ):
                perms_needed.add(str(model._meta.verbose_name))
        return summary, model_count, perms_needed, []

    def delete_model(self, request: Any, obj: Any) -> None:
        delete_deliveries(self._deliveries([obj]))
        obj.delete()

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        delete_deliveries(self._deliveries(queryset))
        queryset.delete()
