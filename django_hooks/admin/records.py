"""Events with their deliveries, deliveries with every attempt, and received webhooks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from django_hooks.admin.common import (
    CappedPaginator,
    DeletesDeliveriesInBatches,
    pretty_json,
    status_badge,
    time_column,
)
from django_hooks.conf import hooks_settings
from django_hooks.exceptions import QueueUnavailable
from django_hooks.inbound.queue import reprocess
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, InboundWebhook
from django_hooks.outbound.state import cancel_deliveries, retry_deliveries

__all__: list[str] = []

DEFERRED_IN_LIST = (
    "event__data",
    "endpoint__secret_ciphertext",
    "endpoint__previous_secrets",
    "endpoint__signing_key_ciphertext",
    "endpoint__previous_signing_keys",
    "endpoint__headers",
    "endpoint__description",
)
STATUS_ORDER = [status.value for status in Delivery.Status]


def delivery_summary(counts: dict[str, int]) -> str:
    if not counts:
        return "no deliveries"
    return format_html_join(
        " ",
        "{}",
        (
            (status_badge(status, f"{counts[status]} {status}"),)
            for status in STATUS_ORDER
            if counts.get(status)
        ),
    )


class EventChangeList(ChangeList):
    """Adds each page row's delivery summary in one query for the whole page."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows: list[Event] = list(self.result_list)
        summary: dict[str, dict[str, int]] = {event.pk: {} for event in rows}
        counted = (
            Delivery.objects.filter(event_id__in=list(summary))
            .values_list("event_id", "status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for event_id, status, n in counted:
            summary[event_id][status] = n
        for event in rows:
            event.delivery_summary = summary[event.pk]  # type: ignore[attr-defined]


class EventTypeFilter(admin.SimpleListFilter):
    """Types the endpoints subscribe to (a small table), not ``DISTINCT type`` over every event."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        types: set[str] = set()
        for subscribed in Endpoint.objects.values_list("event_types", flat=True):
            types.update(t for t in subscribed or [] if "*" not in t)

        types.add(hooks_settings.TEST_EVENT_TYPE)
        if self.value():
            types.add(self.value())  # type: ignore[arg-type]
        return [(t, t) for t in sorted(types)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(type=self.value()) if self.value() else queryset


class DeliveryInline(admin.TabularInline):
    model = Delivery
    readonly_fields = [
        "delivery_link",
        "endpoint",
        "status_display",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_display",
        "completed_display",
    ]
    fields = list(readonly_fields)
    extra = 0
    can_delete = False
    next_attempt_display = time_column("next_attempt_at", "next attempt at")
    completed_display = time_column("completed_at", "completed at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return (
            super()
            .get_queryset(request)
            .select_related("endpoint")
            .defer(
                "endpoint__secret_ciphertext",
                "endpoint__previous_secrets",
                "endpoint__signing_key_ciphertext",
                "endpoint__previous_signing_keys",
            )
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="delivery")
    def delivery_link(self, delivery: Delivery) -> str:
        url = reverse("admin:django_hooks_delivery_change", args=[delivery.pk])
        return format_html('<a href="{}">#{}</a>', url, delivery.pk)

    @admin.display(description="status")
    def status_display(self, delivery: Delivery) -> str:
        return status_badge(delivery.status)


@admin.register(Event)
class EventAdmin(DeletesDeliveriesInBatches, admin.ModelAdmin):
    delivery_field = "event"
    change_form_template = "django_hooks/admin/change_form.html"
    change_list_template = "django_hooks/admin/change_list.html"
    list_display = ["id", "type", "owner_display", "created_display", "deliveries_display"]
    list_filter = [EventTypeFilter]
    search_fields = ["=id", "=idempotency_key"]
    readonly_fields = [
        "id",
        "type",
        "owner_display",
        "idempotency_key",
        "created_display",
        "payload",
    ]
    fields = list(readonly_fields)
    inlines = [DeliveryInline]
    show_full_result_count = False
    # Facet counts would run a COUNT per filter choice over every row.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).prefetch_related("owner")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EventChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # events come from send_event: they carry deliveries

    created_display = time_column("created_at", "created")

    @admin.display(description="owner")
    def owner_display(self, event: Event) -> str:
        return str(event.owner) if event.owner_content_type_id else "—"

    @admin.display(description="deliveries")
    def deliveries_display(self, event: Event) -> str:
        return delivery_summary(getattr(event, "delivery_summary", {}))

    @admin.display(description="payload")
    def payload(self, event: Event) -> str:
        return pretty_json(event.data)


class AttemptInline(admin.StackedInline):
    model = DeliveryAttempt
    readonly_fields = [
        "number",
        "created_display",
        "url",
        "status",
        "duration_ms",
        "error",
        "request_headers_display",
        "response_headers_display",
        "response_body_display",
    ]
    fields = list(readonly_fields)
    extra = 0
    can_delete = False
    ordering = ["number"]
    created_display = time_column("created_at", "at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="response status")
    def status(self, attempt: DeliveryAttempt) -> str:
        if attempt.status_code is None:
            return status_badge("failed", "no response")
        ok = 200 <= attempt.status_code < 300
        return status_badge("succeeded" if ok else "failed", str(attempt.status_code))

    @admin.display(description="request headers (the endpoint's own values hidden)")
    def request_headers_display(self, attempt: DeliveryAttempt) -> str:
        return pretty_json(attempt.request_headers)

    @admin.display(description="response headers")
    def response_headers_display(self, attempt: DeliveryAttempt) -> str:
        return pretty_json(attempt.response_headers)

    @admin.display(description="response body (excerpt)")
    def response_body_display(self, attempt: DeliveryAttempt) -> str:
        return format_html('<pre class="hooks-json">{}</pre>', attempt.response_body or "(empty)")


class DeliveryStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, str(label)) for value, label in Delivery.Status.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_display",
        "endpoint_display",
        "status_display",
        "attempts",
        "last_status_code",
        "next_attempt_display",
        "created_display",
    ]
    list_filter = [DeliveryStatusFilter, "endpoint"]
    raw_id_fields = ["event", "endpoint"]
    readonly_fields = [
        "event",
        "endpoint",
        "status_display",
        "attempts",
        "next_attempt_display",
        "last_status_code",
        "last_error",
        "created_display",
        "completed_display",
    ]
    fields = list(readonly_fields)
    inlines = [AttemptInline]
    actions = ["retry", "cancel"]
    show_full_result_count = False
    # Facet counts would run a COUNT per filter choice over every row.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    ordering = ["-pk"]  # ids grow with creation time; the primary key index serves it
    change_form_template = "django_hooks/admin/change_form.html"
    change_list_template = "django_hooks/admin/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        # Neither the payloads nor the endpoints' secrets are needed to list deliveries.
        return (
            super()
            .get_queryset(request)
            .select_related("event", "endpoint")
            .defer(*DEFERRED_IN_LIST)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    next_attempt_display = time_column("next_attempt_at", "next attempt at")
    created_display = time_column("created_at", "created")
    completed_display = time_column("completed_at", "completed at")

    @admin.display(description="event", ordering="event_id")
    def event_display(self, delivery: Delivery) -> str:
        url = reverse("admin:django_hooks_event_change", args=[delivery.event_id])
        return format_html(
            '<a href="{}">{}</a> <span class="hooks-quiet">{}</span>',
            url,
            delivery.event.type,
            delivery.event_id,
        )

    @admin.display(description="endpoint", ordering="endpoint_id")
    def endpoint_display(self, delivery: Delivery) -> str:
        url = reverse("admin:django_hooks_endpoint_change", args=[delivery.endpoint_id])
        return format_html('<a href="{}">{}</a>', url, delivery.endpoint.url)

    @admin.display(description="status", ordering="status")
    def status_display(self, delivery: Delivery) -> str:
        return status_badge(delivery.status)

    @admin.action(description="Cancel pending deliveries", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = cancel_deliveries(queryset)
        self.message_user(request, f"{count} deliveries cancelled.", messages.SUCCESS)

    @admin.action(description="Retry failed or cancelled deliveries now", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = retry_deliveries(queryset)
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)


class InboundStatusFilter(DeliveryStatusFilter):
    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, str(label)) for value, label in InboundWebhook.Status.choices]


class ProviderFilter(admin.SimpleListFilter):
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(p, p) for p in ("standard", "github", "stripe", "shopify", "slack", "hmac")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(provider=self.value()) if self.value() else queryset


class SourceFilter(admin.SimpleListFilter):
    """The configured sources, plus the one asked for: never ``DISTINCT`` over every call."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        sources = set(hooks_settings.INBOUND or {})
        if self.value():
            sources.add(self.value())
        return [(s, s) for s in sorted(sources)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(source=self.value()) if self.value() else queryset


class InboundChangeList(ChangeList):
    def get_queryset(self, request: HttpRequest, *args: Any, **kwargs: Any) -> QuerySet[Any]:
        # The list shows none of the stored bodies: leave them in the database.
        return super().get_queryset(request, *args, **kwargs).defer("body", "payload", "headers")


@admin.register(InboundWebhook)
class InboundWebhookAdmin(admin.ModelAdmin):
    change_form_template = "django_hooks/admin/change_form.html"
    change_list_template = "django_hooks/admin/change_list.html"
    # The id first: hooks_reprocess takes it.
    list_display = [
        "id",
        "webhook_id",
        "source",
        "provider",
        "event_type",
        "status_display",
        "received_display",
    ]
    list_display_links = ["id", "webhook_id"]
    list_filter = [InboundStatusFilter, SourceFilter, ProviderFilter]
    search_fields = ["=webhook_id"]
    readonly_fields = [
        "id",
        "source",
        "tenant",
        "provider",
        "webhook_id",
        "sender_id",
        "event_type",
        "status_display",
        "attempts",
        "error",
        "handler",
        "received_display",
        "processed_display",
        "headers_display",
        "body_display",
        "payload_display",
    ]
    fields = list(readonly_fields)
    actions = ["reprocess"]
    show_full_result_count = False
    # Facet counts would run a COUNT per filter choice over every row.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    ordering = ["-received_at"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return InboundChangeList

    received_display = time_column("received_at", "received")
    processed_display = time_column("processed_at", "processed")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_display(self, call: InboundWebhook) -> str:
        return status_badge(
            {"received": "pending", "processed": "succeeded"}.get(call.status, call.status),
            call.status,
        )

    @admin.display(description="headers")
    def headers_display(self, call: InboundWebhook) -> str:
        return pretty_json(call.headers)

    @admin.display(description="body")
    def body_display(self, call: InboundWebhook) -> str:
        body = bytes(call.body or b"")
        text = body[: 64 * 1024].decode("utf-8", errors="replace")
        more = f"\n… ({len(body) - 64 * 1024} more bytes)" if len(body) > 64 * 1024 else ""
        return format_html('<pre class="hooks-json">{}{}</pre>', text, more)

    @admin.display(description="payload (as parsed)")
    def payload_display(self, call: InboundWebhook) -> str:
        return pretty_json(call.payload)

    @admin.action(description="Run the handler again", permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[InboundWebhook]) -> None:
        try:
            count = reprocess(queryset)
        except QueueUnavailable as exc:
            self.message_user(
                request, f"{exc}. The calls run once the sweep reaches Redis.", messages.ERROR
            )
            return
        self.message_user(request, f"{count} inbound webhooks queued again.", messages.SUCCESS)
