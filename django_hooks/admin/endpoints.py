"""The endpoint console: health at a glance in the list, a chart and the operator's buttons on
the change page (send a test event, enable/disable, rotate or reveal the secret, recover)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from django_hooks.admin.common import (
    CappedPaginator,
    DeletesDeliveriesInBatches,
    status_badge,
    time_column,
)
from django_hooks.admin.credentials import CredentialsFieldset
from django_hooks.admin.forms import EndpointAdminForm
from django_hooks.conf import hooks_settings
from django_hooks.exceptions import EndpointNotReceiving
from django_hooks.internal.chart import delivery_chart
from django_hooks.internal.display import show_time, time_text
from django_hooks.internal.writeonly import EndpointCredentialsForm
from django_hooks.models import DeliveryAttempt, Endpoint
from django_hooks.outbound.operations import (
    DeliveryCounts,
    delivery_counts,
    hourly_delivery_counts,
    last_attempts,
    latest_attempted_delivery,
    recover_deliveries,
    send_test_event,
)
from django_hooks.outbound.state import (
    Replayed,
    disable_endpoint,
    enable_endpoint,
    replay_missing,
)

__all__: list[str] = []

WINDOW = dt.timedelta(hours=24)
OPERATIONS = (
    "send_test",
    "enable",
    "disable",
    "rotate_secret",
    "reveal_secret",
    "rotate_signing_key",
    "recover",
    "replay_missing",
)
CHART_HOURS = 48
#: Never needed on the list and change pages: not even their ciphertext is read.
CREDENTIAL_FIELDS = (
    "secret_ciphertext",
    "previous_secrets",
    "signing_key_ciphertext",
    "previous_signing_keys",
)


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("receiving", "Receiving"), ("disabled", "Disabled"), ("inactive", "Inactive")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "receiving":
            return queryset.filter(is_active=True, disabled_at__isnull=True)
        if self.value() == "disabled":
            return queryset.filter(disabled_at__isnull=False)
        if self.value() == "inactive":
            return queryset.filter(is_active=False)
        return queryset


class EndpointChangeList(ChangeList):
    """Adds each page row's 24 h counts and last attempt in two queries for the whole page."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows: list[Endpoint] = list(self.result_list)
        counts = delivery_counts([e.pk for e in rows], since=timezone.now() - WINDOW)
        last = last_attempts([e.last_delivery_id for e in rows if e.last_delivery_id])  # type: ignore[attr-defined]
        for endpoint in rows:
            endpoint.counts_24h = counts[endpoint.pk]  # type: ignore[attr-defined]
            endpoint.last_attempt = last.get(endpoint.last_delivery_id)  # type: ignore[attr-defined]


def describe_counts(counts: DeliveryCounts) -> str:
    if not counts.total:
        return "none"
    parts = [f"{counts.succeeded} delivered", f"{counts.failed} failed"]
    if counts.pending:
        parts.append(f"{counts.pending} pending")
    return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts))


def describe_rate(counts: DeliveryCounts) -> str:
    rate = counts.success_rate
    if rate is None:
        return "—"
    status = "succeeded" if rate >= 0.99 else "pending" if rate >= 0.9 else "failed"
    return status_badge(status, f"{rate:.1%}".replace(".0%", "%"))


def describe_attempt(attempt: DeliveryAttempt | None) -> str:
    if attempt is None:
        return "—"
    ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
    label = str(attempt.status_code) if attempt.status_code is not None else "error"
    return format_html(
        '{}<br><span class="hooks-quiet hooks-when" title="{}">{}</span>',
        status_badge("succeeded" if ok else "failed", label),
        attempt.error,
        show_time(attempt.created_at),
    )


def describe_state(endpoint: Endpoint) -> str:
    if endpoint.disabled_at is not None:
        return format_html(
            '{} <span class="hooks-quiet">{}</span>',
            status_badge("failed", "disabled"),
            endpoint.disabled_reason,
        )
    if not endpoint.is_active:
        return status_badge("cancelled", "inactive")
    return status_badge("succeeded", "receiving")


class RecoverForm(forms.Form):
    since = forms.DateTimeField(
        label="Failed since", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        label="until (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            raise forms.ValidationError("“until” must be later than “since”.")
        return data


class EndpointForm(EndpointCredentialsForm, EndpointAdminForm):
    """The endpoint's own fields (lists and rows) and its receiver credentials fieldset."""

    class Meta(EndpointAdminForm.Meta):
        pass


@admin.register(Endpoint)
class EndpointAdmin(CredentialsFieldset, DeletesDeliveriesInBatches, admin.ModelAdmin):
    delivery_field = "endpoint"
    form = EndpointForm
    # The id first: the management commands (hooks_send_test, hooks_retry --endpoint) take it.
    list_display = [
        "id",
        "url",
        "owner_display",
        "state",
        "subscriptions",
        "deliveries_24h",
        "last_attempt_display",
    ]
    list_display_links = ["id", "url"]
    list_filter = [StateFilter]
    search_fields = ["=id", "url", "description"]
    # Shown on the change page only: on the add page there is nothing to show yet.
    readonly_fields = [
        "id",
        "state",
        "disabled_at_display",
        "disabled_reason",
        "failing_since_display",
        "owner_display",
        "public_keys_display",
        "created_display",
        "updated_display",
    ]
    fieldsets = [
        (None, {"fields": ["url", "description", "event_types", "headers", "is_active"]}),
        ("Owner", {"fields": ["owner_content_type", "owner_id", "owner_display"]}),
        ("Limits", {"fields": ["max_concurrency", "rate_limit", "send_traceparent"]}),
        ("Signing", {"fields": ["signing_scheme", "public_keys_display"]}),
        (
            "State",
            {
                "fields": [
                    "id",
                    "state",
                    "disabled_at_display",
                    "disabled_reason",
                    "failing_since_display",
                    "created_display",
                    "updated_display",
                ]
            },
        ),
    ]
    actions = ["enable", "enable_and_replay", "disable", "send_test"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    change_form_template = "django_hooks/admin/endpoint_change_form.html"
    change_list_template = "django_hooks/admin/change_list.html"
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Endpoint]:
        # The secrets are never needed on these pages: not even their ciphertext is read.
        return (
            super()
            .get_queryset(request)
            .defer(*CREDENTIAL_FIELDS)
            .annotate(last_delivery_id=latest_attempted_delivery())
            .prefetch_related("owner")
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EndpointChangeList

    def get_fieldsets(self, request: HttpRequest, obj: Endpoint | None = None) -> Any:
        readonly = set(self.readonly_fields)
        masked = obj is not None and not self.has_change_permission(request, obj)
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):
            fields = [
                # A view-only user sees the extra headers' names, not their values: they often
                # carry a credential, shown only to those who may also reveal the secret.
                "headers_masked" if masked and field == "headers" else field
                for field in options["fields"]
                if obj is not None or field not in readonly
            ]
            if fields:
                fieldsets.append((name, {**options, "fields": fields}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Endpoint | None = None) -> Any:
        if obj is None:
            return []
        fields = list(super().get_readonly_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields.append("headers_masked")
        return fields

    disabled_at_display = time_column("disabled_at", "disabled at")
    failing_since_display = time_column("failing_since", "failing since")
    created_display = time_column("created_at", "created")
    updated_display = time_column("updated_at", "updated")

    @admin.display(description="extra headers")
    def headers_masked(self, endpoint: Endpoint) -> str:
        names = sorted(endpoint.headers) if isinstance(endpoint.headers, dict) else []
        return ", ".join(f"{name}: [hidden]" for name in names) or "—"

    @admin.display(description="Ed25519 public key")
    def public_keys_display(self, endpoint: Endpoint) -> str:
        # Public: what receivers verify v1a signatures with. The signing key is never shown.
        if endpoint.pk is None or not endpoint.signing_key_ciphertext:
            return "— (none until the signing scheme includes Ed25519)"
        previous = endpoint.previous_public_keys()
        return format_html(
            "<code>{}</code>{}",
            endpoint.public_key,
            format_html_join(
                "",
                '<br><code>{}</code> <span class="hooks-quiet">(previous, signs until {})</span>',
                ((entry["public_key"], entry["expires_at"]) for entry in previous),
            ),
        )

    # -- columns --------------------------------------------------------------------------------

    @admin.display(description="owner")
    def owner_display(self, endpoint: Endpoint) -> str:
        if endpoint.owner_content_type_id is None:
            return "—"
        owner = endpoint.owner
        if owner is None:
            content_type = ContentType.objects.get_for_id(endpoint.owner_content_type_id)
            return f"{content_type.name} {endpoint.owner_id} (deleted)"
        return str(owner)

    @admin.display(description="state")
    def state(self, endpoint: Endpoint) -> str:
        return describe_state(endpoint)

    @admin.display(description="subscribed to")
    def subscriptions(self, endpoint: Endpoint) -> str:
        return ", ".join(endpoint.event_types) or "all events"

    @admin.display(description="last 24 h")
    def deliveries_24h(self, endpoint: Endpoint) -> str:
        counts = self._counts(endpoint)
        if not counts.total:
            return "no deliveries"
        return format_html("{}<br>{}", describe_rate(counts), describe_counts(counts))

    @admin.display(description="last attempt")
    def last_attempt_display(self, endpoint: Endpoint) -> str:
        return describe_attempt(getattr(endpoint, "last_attempt", None))

    def _counts(self, endpoint: Endpoint) -> DeliveryCounts:
        counts = getattr(endpoint, "counts_24h", None)
        if counts is None:  # outside the list page (e.g. a custom view): one query
            counts = delivery_counts([endpoint.pk], since=timezone.now() - WINDOW)[endpoint.pk]
        return counts

    # -- list actions ---------------------------------------------------------------------------

    @admin.action(description="Enable and resume pending deliveries", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        resumed = 0
        for endpoint in queryset:
            resumed += enable_endpoint(endpoint)
            self.log_change(request, endpoint, "Enabled.")
        self.message_user(
            request, f"Enabled; {resumed} pending deliveries resumed.", messages.SUCCESS
        )

    @admin.action(
        description="Enable and replay the events missed while disabled", permissions=["change"]
    )
    def enable_and_replay(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        replayed = 0
        for endpoint in queryset:
            try:
                done = replay_missing(endpoint)
            except ValueError:  # never disabled: nothing missed
                continue
            replayed += done.count
            self.log_change(request, endpoint, describe_replay(done))
        self.message_user(request, f"{replayed} missed events queued.", messages.SUCCESS)

    @admin.action(description="Disable (no attempts until enabled)", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        count = 0
        for endpoint in queryset:
            if disable_endpoint(endpoint, self._disabled_by(request)):
                self.log_change(request, endpoint, "Disabled.")
                count += 1
        self.message_user(request, f"{count} endpoints disabled.", messages.SUCCESS)

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        sent, skipped = 0, 0
        for endpoint in queryset:
            try:
                send_test_event(endpoint)
            except EndpointNotReceiving:
                skipped += 1
            else:
                sent += 1
        self.message_user(request, f"Test event sent to {sent} endpoints.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} disabled or inactive endpoints skipped.", messages.WARNING
            )

    @staticmethod
    def _disabled_by(request: HttpRequest) -> str:
        return f"Disabled by {request.user} in the admin."

    # -- change page ----------------------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        endpoint = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if endpoint is not None:
            now = timezone.now()
            series = hourly_delivery_counts(endpoint, hours=CHART_HOURS, now=now)
            counts = delivery_counts([endpoint.pk], since=now - WINDOW)[endpoint.pk]
            last_id = getattr(endpoint, "last_delivery_id", None)
            since = timezone.localtime(now - WINDOW).replace(second=0, microsecond=0)
            context.update(
                hooks_endpoint=endpoint,
                hooks_state=describe_state(endpoint),
                hooks_counts=describe_counts(counts),
                hooks_rate=describe_rate(counts),
                hooks_last_attempt=describe_attempt(
                    last_attempts([last_id]).get(last_id) if last_id else None
                ),
                hooks_chart=delivery_chart(series),
                hooks_can_operate=self.has_change_permission(request, endpoint),
                hooks_recover_form=RecoverForm(initial={"since": since.strftime("%Y-%m-%dT%H:%M")}),
                hooks_deliveries_url=reverse("admin:django_hooks_delivery_changelist")
                + f"?endpoint__id__exact={endpoint.pk}",
                hooks_urls={
                    name: reverse(f"admin:django_hooks_endpoint_{name}", args=[endpoint.pk])
                    for name in OPERATIONS
                },
            )
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        views = {
            "send-test": self.send_test_view,
            "enable": self.enable_view,
            "disable": self.disable_view,
            "rotate-secret": self.rotate_secret_view,
            "reveal-secret": self.reveal_secret_view,
            "rotate-signing-key": self.rotate_signing_key_view,
            "recover": self.recover_view,
            "replay-missing": self.replay_missing_view,
        }
        own = [
            path(
                f"<path:object_id>/{slug}/",
                self.admin_site.admin_view(require_POST(view)),
                name=f"django_hooks_endpoint_{slug.replace('-', '_')}",
            )
            for slug, view in views.items()
        ]
        return own + super().get_urls()

    def _operable(self, request: HttpRequest, object_id: str) -> Endpoint:
        """The endpoint an operator button acts on; 403 without the change permission."""
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None:
            raise Http404("No such endpoint.")
        if not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        return endpoint

    def _back(self, endpoint: Endpoint) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:django_hooks_endpoint_change", args=[endpoint.pk])
        )

    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        try:
            event = send_test_event(endpoint)
        except EndpointNotReceiving as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.log_change(request, endpoint, f"Sent test event {event.pk}.")
            url = reverse("admin:django_hooks_event_change", args=[event.pk])
            self.message_user(
                request,
                format_html('Test event <a href="{}">{}</a> sent.', url, event.pk),
                messages.SUCCESS,
            )
        return self._back(endpoint)

    def enable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        resumed = enable_endpoint(endpoint)
        self.log_change(request, endpoint, "Enabled.")
        self.message_user(
            request, f"Enabled; {resumed} pending deliveries resumed.", messages.SUCCESS
        )
        return self._back(endpoint)

    def replay_missing_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        try:
            done = replay_missing(endpoint)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            message = describe_replay(done)
            self.log_change(request, endpoint, message)
            self.message_user(request, message, messages.SUCCESS)
        return self._back(endpoint)

    def disable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        if disable_endpoint(endpoint, self._disabled_by(request)):
            self.log_change(request, endpoint, "Disabled.")
            self.message_user(request, "Disabled: no attempts until enabled.", messages.SUCCESS)
        else:
            self.message_user(request, "Already disabled.", messages.WARNING)
        return self._back(endpoint)

    def rotate_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        # The deferred ciphertext is loaded here, on purpose: the old secret keeps signing.
        secret = endpoint.rotate_secret()
        self.log_change(request, endpoint, "Rotated the signing secret.")
        return self._secret_page(request, endpoint, secret, rotated=True)

    def reveal_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        self.log_change(request, endpoint, "Revealed the signing secret.")
        return self._secret_page(request, endpoint, endpoint.secret, rotated=False)

    def rotate_signing_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        public_key = endpoint.rotate_signing_key()
        self.log_change(request, endpoint, "Rotated the Ed25519 signing key.")
        self.message_user(
            request,
            format_html(
                "New Ed25519 public key <code>{}</code>; the previous key keeps signing for "
                "{} hours.",
                public_key,
                f"{endpoint_grace_hours():g}",
            ),
            messages.SUCCESS,
        )
        return self._back(endpoint)

    def _secret_page(
        self, request: HttpRequest, endpoint: Endpoint, secret: str, *, rotated: bool
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "New signing secret" if rotated else "Signing secret",
            "opts": self.model._meta,
            "original": endpoint,
            "secret": secret,
            "rotated": rotated,
            "grace_hours": endpoint_grace_hours(),
            "change_url": reverse("admin:django_hooks_endpoint_change", args=[endpoint.pk]),
        }
        response = TemplateResponse(request, "django_hooks/admin/endpoint_secret.html", context)
        add_never_cache_headers(response)  # includes no-store: never kept by a browser or proxy
        response["Referrer-Policy"] = "no-referrer"
        return response

    def recover_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._operable(request, object_id)
        form = RecoverForm(request.POST)
        if not form.is_valid():
            problems = "; ".join(
                describe_error(form, name, errors) for name, errors in form.errors.items()
            )
            self.message_user(request, f"Nothing recovered: {problems}", messages.ERROR)
            return self._back(endpoint)
        since, until = form.cleaned_data["since"], form.cleaned_data["until"]
        count = recover_deliveries(endpoint, since, until)
        window = f"since {time_text(since)}"
        if until:
            window += f" until {time_text(until)}"
        self.log_change(request, endpoint, f"Recovered {count} failed deliveries {window}.")
        self.message_user(
            request, f"{count} failed deliveries {window} queued again.", messages.SUCCESS
        )
        return self._back(endpoint)


def describe_replay(done: Replayed) -> str:
    since, until = timezone.localtime(done.since), timezone.localtime(done.until)
    window = f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}"
    enabled = "Enabled; " if done.enabled else ""
    return f"{enabled}{done.count} events missed from {window} queued."


def describe_error(form: forms.Form, name: str, errors: Any) -> str:
    label = form.fields[name].label if name in form.fields else ""
    return f"{label or ''} {' '.join(map(str, errors))}".strip()


def endpoint_grace_hours() -> float:
    return float(hooks_settings.SECRET_GRACE_PERIOD) / 3600
