"""Admin registration: endpoints, events, deliveries and their attempts (never a secret)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, InboundWebhook
from django_hooks.outbound.sweep import cancel_deliveries, enable_endpoint, retry_deliveries


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "description", "is_active", "disabled_at", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["disabled_at", "disabled_reason", "created_at", "updated_at"]
    fields = ["url", "description", "event_types", "headers", "is_active", *readonly_fields]
    actions = ["enable"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.action(description="Enable and resume pending deliveries", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        resumed = sum(enable_endpoint(endpoint) for endpoint in queryset)
        self.message_user(
            request, f"Enabled; {resumed} pending deliveries resumed.", messages.SUCCESS
        )


DELIVERY_SUMMARY = (
    "endpoint", "status", "attempts", "last_status_code", "next_attempt_at", "completed_at",
)  # fmt: skip
ATTEMPT_FIELDS = (
    "number", "created_at", "status_code", "duration_ms", "error", "request_headers",
    "response_headers", "response_body",
)  # fmt: skip


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = DELIVERY_SUMMARY
    readonly_fields = DELIVERY_SUMMARY
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["=id", "type", "=idempotency_key"]
    readonly_fields = ["id", "type", "data", "owner_content_type", "owner_id", "idempotency_key",
                       "created_at"]  # fmt: skip
    inlines = [DeliveryInline]
    show_full_result_count = False
    ordering = ["-created_at"]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ATTEMPT_FIELDS
    readonly_fields = ATTEMPT_FIELDS
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "endpoint", "status", "attempts", "last_status_code",
                    "next_attempt_at"]  # fmt: skip
    list_filter = ["status"]
    list_select_related = ["event", "endpoint"]
    raw_id_fields = ["event", "endpoint"]
    readonly_fields = ["event", "endpoint", "status", "attempts", "next_attempt_at",
                       "last_status_code", "last_error", "created_at", "completed_at"]  # fmt: skip
    inlines = [AttemptInline]
    actions = ["retry", "cancel"]
    show_full_result_count = False
    ordering = ["-created_at"]

    @admin.action(description="Cancel pending deliveries", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = cancel_deliveries(queryset)
        self.message_user(request, f"{count} deliveries cancelled.", messages.SUCCESS)

    @admin.action(description="Retry failed or cancelled deliveries now", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = retry_deliveries(queryset)
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)


@admin.register(InboundWebhook)
class InboundWebhookAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "source", "provider", "event_type", "status", "received_at"]
    list_filter = ["status", "source", "provider"]
    search_fields = ["=webhook_id", "event_type"]
    readonly_fields = [
        "source", "provider", "webhook_id", "event_type", "status", "attempts", "error",
        "handler", "headers", "payload", "received_at", "processed_at",
    ]  # fmt: skip
    exclude = ["body"]
    actions = ["reprocess"]
    show_full_result_count = False
    ordering = ["-received_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Run the handler again", permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[InboundWebhook]) -> None:
        count = queryset.reprocess()  # type: ignore[attr-defined]
        self.message_user(request, f"{count} inbound webhooks queued again.", messages.SUCCESS)
