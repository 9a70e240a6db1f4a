"""The portal's pages: one owner's endpoints, their health and delivery log, secrets and tests.

Every page runs the same few queries whatever the number of rows, and every action is a plain
form POST (no JavaScript). Endpoint changes go through the REST API's serializer, so the portal
refuses exactly what the API refuses (the SSRF guard, subscriptions, an operator's disable);
credentials and custom headers go through the admin's write-only form and the model's checks.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from rest_framework import exceptions as api_errors

from django_hooks.api.serializers import EndpointSerializer
from django_hooks.conf import hooks_settings
from django_hooks.core.errors import PayloadError
from django_hooks.event_types import check_declared, declared_event_types
from django_hooks.exceptions import (
    EndpointNotReceiving,
    EndpointValidationError,
    InvalidEventType,
)
from django_hooks.internal.chart import delivery_chart
from django_hooks.internal.retention import delete_deliveries
from django_hooks.internal.writeonly import KIND_CHOICES
from django_hooks.models import Delivery, Endpoint, owner_q
from django_hooks.outbound.operations import (
    DeliveryCounts,
    attempt_latency,
    delivery_counts,
    hourly_delivery_counts,
    last_attempts,
    latest_attempted_delivery,
    recover_deliveries,
    send_test_event,
)
from django_hooks.outbound.state import retry_deliveries
from django_hooks.portal import access
from django_hooks.portal.access import portal_view
from django_hooks.portal.forms import (
    CredentialsForm,
    DeliveryFilterForm,
    EndpointForm,
    RecoverForm,
    TestEventForm,
    subscribable_types,
)
from django_hooks.portal.snippets import SNIPPETS

__all__: list[str] = []

WINDOW = dt.timedelta(hours=24)
CHART_HOURS = 48  # as the admin's endpoint page
ENDPOINTS_PER_PAGE = 50
DELIVERIES_PER_PAGE = 50

#: Messages shown after an action (``?notice=``): fixed texts, so a link cannot inject any.
NOTICES = {
    "created": "Endpoint created. Reveal its secret to verify what it receives.",
    "saved": "Changes saved.",
    "credentials-saved": "Credentials and headers saved; the next attempts send them.",
    "deleted": "Endpoint deleted, with its delivery log.",
    "disabled": "Endpoint disabled: it receives nothing until you enable it.",
    "enabled": "Endpoint enabled; its pending deliveries resume.",
    "test-sent": "Test event sent. This page shows its delivery; reload to follow it.",
    "retried": "Delivery queued again.",
    "recovered": "{n} failed deliveries queued again.",
}


# -- helpers --------------------------------------------------------------------------------------


def owner_of(request: HttpRequest) -> Any:
    return request.portal.owner  # type: ignore[attr-defined]


def owned_endpoints(request: HttpRequest) -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(owner_q(owner_of(request)))


def owned_endpoint(request: HttpRequest, pk: int, *, secrets: bool = False) -> Endpoint:
    """The owner's endpoint ``pk``; another owner's is a 404, exactly like a missing one."""
    endpoints = owned_endpoints(request)
    if not secrets:
        endpoints = endpoints.defer("secret_ciphertext", "previous_secrets")
    endpoint = endpoints.filter(pk=pk).first()
    if endpoint is None:
        raise Http404("No such endpoint.")
    return endpoint


def owned_delivery(request: HttpRequest, pk: int) -> Delivery:
    delivery = (
        Delivery.objects.filter(owner_q(owner_of(request), prefix="endpoint__"), pk=pk)
        .select_related("event", "endpoint")
        .defer("endpoint__secret_ciphertext", "endpoint__previous_secrets")
        .first()
    )
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


def render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> TemplateResponse:
    notice = NOTICES.get(request.GET.get("notice", ""), "")
    if "{n}" in notice:
        count = request.GET.get("n", "")
        notice = notice.format(n=int(count) if count.isdigit() else "Some")
    context = {
        "portal": request.portal,  # type: ignore[attr-defined]
        "nav": "endpoints",
        "portal_csrf_field": access.CSRF_FIELD,
        "notice": notice,
        **context,
    }
    return TemplateResponse(request, f"django_hooks/portal/{template}", context, status=status)


def redirect(name: str, *args: Any, notice: str = "", **query: Any) -> HttpResponseRedirect:
    url = reverse(f"django_hooks_portal:{name}", args=args)
    params = {"notice": notice, **query} if notice else query
    if params:
        url += "?" + urlencode(params)
    return HttpResponseRedirect(url)


def api_errors_to_form(form: Any, detail: Any) -> None:
    """Put the API serializer's errors next to the form's fields (``url`` next to URL...)."""
    if not isinstance(detail, dict):
        detail = {None: detail}
    for name, errors in detail.items():
        field = name if name in form.fields else None
        if name == "event_types":
            field = "other_types"
        for message in flatten(errors):
            form.add_error(field, for_customers(message))


def for_customers(message: str) -> str:
    """The SSRF guard's refusal without its advice to the site's developers (ALLOWED_NETWORKS
    is their setting, not the customer's)."""
    reason, advice, _ = message.partition(". To reach it from a development machine")
    return f"{reason}." if advice else message


def flatten(errors: Any) -> list[str]:
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in flatten(value)]
    if isinstance(errors, list | tuple):
        return [m for value in errors for m in flatten(value)]
    return [str(errors)]


def state_of(endpoint: Endpoint) -> dict[str, str]:
    if endpoint.disabled_at is not None:
        by = "by the site's operators" if endpoint.disabled_by == "operator" else "automatically"
        return {
            "code": "disabled",
            "label": "Disabled",
            "detail": f"Disabled {by}: {endpoint.disabled_reason or 'no reason given'}",
        }
    if not endpoint.is_active:
        return {"code": "inactive", "label": "Disabled", "detail": "Disabled by you."}
    return {"code": "receiving", "label": "Receiving", "detail": ""}


def secret_page(request: HttpRequest, endpoint: Endpoint, secret: str, *, rotated: bool) -> Any:
    response = render(
        request,
        "secret.html",
        {
            "endpoint": endpoint,
            "secret": secret,
            "rotated": rotated,
            "grace_hours": grace_hours(),
        },
    )
    add_never_cache_headers(response)  # no-store: never kept by a browser or a proxy
    response["Referrer-Policy"] = "no-referrer"
    return response


def success_rate(counts: DeliveryCounts) -> str:
    """ "99.5%", as the admin shows it; "" when nothing finished."""
    rate = counts.success_rate
    return "" if rate is None else f"{rate:.1%}".replace(".0%", "%")


def grace_hours() -> str:
    hours = float(hooks_settings.SECRET_GRACE_PERIOD) / 3600
    return f"{hours:g}"


# -- signed links ---------------------------------------------------------------------------------


@access.login_not_required
@require_safe
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """Open the portal's own session from a signed link, then drop the token from the URL."""
    link = access.read_link(token)
    owner = access.load_owner(link[0], link[1]) if link is not None else None
    if link is None or owner is None:
        response = access.refused(
            request,
            "Link expired",
            "This link to the webhook portal has expired or is not valid. "
            "Open the portal again from the page that linked you here.",
            403,
        )
        response["Referrer-Policy"] = "no-referrer"
        return access.frame_headers(response, None)
    response = HttpResponseRedirect(access.portal_root(), status=303)
    access.start_session(request, response, link[0], link[1])
    response["Referrer-Policy"] = "no-referrer"  # the token never leaves in a Referer
    add_never_cache_headers(response)
    session = access.Access(owner, True, "")
    return access.frame_headers(response, session)


# -- endpoints ------------------------------------------------------------------------------------


@portal_view
@require_safe
def endpoints(request: HttpRequest) -> HttpResponse:
    rows = (
        owned_endpoints(request)
        .defer("secret_ciphertext", "previous_secrets")
        .annotate(last_delivery_id=latest_attempted_delivery())
        .order_by("-created_at", "-pk")
    )
    page = Paginator(rows, ENDPOINTS_PER_PAGE).get_page(request.GET.get("page"))
    listed: list[Endpoint] = list(page.object_list)
    counts = delivery_counts([e.pk for e in listed], since=timezone.now() - WINDOW)
    last = last_attempts([e.last_delivery_id for e in listed if e.last_delivery_id])  # type: ignore[attr-defined]
    table = [
        {
            "endpoint": e,
            "state": state_of(e),
            "counts": counts[e.pk],
            "rate": success_rate(counts[e.pk]),
            "last_attempt": last.get(e.last_delivery_id),  # type: ignore[attr-defined]
        }
        for e in listed
    ]
    return render(request, "endpoints.html", {"rows": table, "page": page})


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_new(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        serializer = EndpointSerializer(data=endpoint_data(form))
        if not serializer.is_valid():
            api_errors_to_form(form, serializer.errors)
        else:
            try:
                endpoint = serializer.save(owner=owner_of(request))
            except api_errors.ValidationError as exc:
                api_errors_to_form(form, exc.detail)
            else:
                return redirect("endpoint", endpoint.pk, notice="created")
    status = 400 if form.errors else 200
    return render(request, "endpoint_form.html", {"form": form, "endpoint": None}, status)


def endpoint_data(form: EndpointForm) -> dict[str, Any]:
    return {
        "url": form.cleaned_data["url"],
        "description": form.cleaned_data["description"],
        "event_types": form.subscriptions(),
    }


@portal_view
@require_safe
def endpoint(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = owned_endpoint(request, pk)
    now = timezone.now()
    since = now - WINDOW
    counts = delivery_counts([endpoint.pk], since=since)[endpoint.pk]
    latency = attempt_latency([endpoint.pk], since=since)[endpoint.pk]
    last_id = (
        Delivery.objects.filter(endpoint=endpoint, attempts__gt=0)
        .order_by("-created_at")
        .values_list("pk", flat=True)
        .first()
    )
    last = last_attempts([last_id]).get(last_id) if last_id else None
    series = hourly_delivery_counts(endpoint, hours=CHART_HOURS, now=now)
    return render(
        request,
        "endpoint.html",
        {
            "endpoint": endpoint,
            "state": state_of(endpoint),
            "counts": counts,
            "latency": latency,
            "rate": success_rate(counts),
            "last_attempt": last,
            "chart": delivery_chart(series),
            "credentials": credentials_summary(endpoint),
            "recover_form": RecoverForm(initial={"since": since.replace(second=0, microsecond=0)}),
        },
    )


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = owned_endpoint(request, pk, secrets=True)
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            serializer = EndpointSerializer(endpoint, data=endpoint_data(form), partial=True)
            if not serializer.is_valid():
                api_errors_to_form(form, serializer.errors)
            else:
                try:
                    serializer.save()
                except api_errors.ValidationError as exc:
                    api_errors_to_form(form, exc.detail)
                else:
                    return redirect("endpoint", endpoint.pk, notice="saved")
    else:
        form = EndpointForm(initial=EndpointForm.initial_for(endpoint))
    status = 400 if form.errors else 200
    return render(request, "endpoint_form.html", {"form": form, "endpoint": endpoint}, status)


#: What a save of the credentials page writes: nothing else about the endpoint.
CREDENTIAL_FIELDS = ["auth_kind", "auth_public", "auth_ciphertext", "headers", "updated_at"]


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_credentials(request: HttpRequest, pk: int) -> HttpResponse:
    """The receiver credentials and custom headers: secrets and header values are write-only,
    validated as the admin and the API validate them, and saved together or not at all."""
    endpoint = owned_endpoint(request, pk, secrets=request.method == "POST")
    current = credentials_summary(endpoint)  # before the form changes the instance
    form = CredentialsForm(request.POST if request.method == "POST" else None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                endpoint.save(update_fields=CREDENTIAL_FIELDS)
        except EndpointValidationError as exc:  # e.g. the token URL's name resolved elsewhere
            for message in flatten(exc.message_dict):
                form.add_error(None, for_customers(message))
        else:
            return redirect("endpoint", endpoint.pk, notice="credentials-saved")
    for name, messages in form.errors.items():  # the model's, as on the endpoint form
        form.errors[name] = form.error_class([for_customers(str(m)) for m in messages])
    status = 400 if form.errors else 200
    response = render(
        request,
        "endpoint_credentials.html",
        {"endpoint": endpoint, "form": form, "current": current},
        status,
    )
    add_never_cache_headers(response)
    return response


def credentials_summary(endpoint: Endpoint) -> dict[str, Any]:
    """What the pages show of the credentials and headers: the kind, its non-secret parts and
    the header names."""
    kind = endpoint.auth_kind
    public = (endpoint.auth_public or {}).items()
    parts = [(name.replace("_", " "), value) for name, value in public if value and name != "kind"]
    return {
        "kind": dict(KIND_CHOICES).get(kind, "none") if kind else "",
        "parts": parts,
        "headers": sorted(endpoint.headers or {}, key=str.lower),
    }


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = owned_endpoint(request, pk)
    if request.method == "POST":
        # In batches: the ORM's cascade would load every delivery of a busy endpoint first.
        delete_deliveries(Delivery.objects.filter(endpoint=endpoint))
        Endpoint.objects.filter(pk=endpoint.pk).delete()
        return redirect("endpoints", notice="deleted")
    deliveries = Delivery.objects.filter(endpoint=endpoint).count()
    return render(request, "endpoint_delete.html", {"endpoint": endpoint, "deliveries": deliveries})


@portal_view
@require_POST
def endpoint_disable(request: HttpRequest, pk: int) -> HttpResponse:
    return set_active(request, pk, active=False)


@portal_view
@require_POST
def endpoint_enable(request: HttpRequest, pk: int) -> HttpResponse:
    return set_active(request, pk, active=True)


def set_active(request: HttpRequest, pk: int, *, active: bool) -> HttpResponse:
    """As the API's ``PATCH {"is_active": ...}``: enabling lifts an automatic disable, never an
    operator's."""
    endpoint = owned_endpoint(request, pk, secrets=True)
    serializer = EndpointSerializer(endpoint, data={"is_active": active}, partial=True)
    try:
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            serializer.save()
    except api_errors.PermissionDenied as exc:
        return refused_action(request, endpoint, str(exc.detail))
    except api_errors.ValidationError as exc:
        return refused_action(request, endpoint, " ".join(flatten(exc.detail)))
    return redirect("endpoint", endpoint.pk, notice="enabled" if active else "disabled")


def refused_action(request: HttpRequest, endpoint: Endpoint, message: str) -> HttpResponse:
    return render(request, "refused_action.html", {"endpoint": endpoint, "message": message}, 409)


# -- secrets --------------------------------------------------------------------------------------


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_secret(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks; the POST shows the secret (on a page never cached)."""
    endpoint = owned_endpoint(request, pk, secrets=request.method == "POST")
    if request.method == "POST":
        return secret_page(request, endpoint, endpoint.secret, rotated=False)
    return render(
        request,
        "secret_confirm.html",
        {"endpoint": endpoint, "rotate": False, "grace_hours": grace_hours()},
    )


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = owned_endpoint(request, pk, secrets=request.method == "POST")
    if request.method == "POST":
        secret = endpoint.rotate_secret()
        return secret_page(request, endpoint, secret, rotated=True)
    return render(
        request,
        "secret_confirm.html",
        {"endpoint": endpoint, "rotate": True, "grace_hours": grace_hours()},
    )


# -- test events and recovery ---------------------------------------------------------------------


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = owned_endpoint(request, pk)
    form = TestEventForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        event_type = form.cleaned_data["event_type"]
        try:
            check_declared(event_type)
            event = send_test_event(endpoint, event_type=event_type)
        except (EndpointNotReceiving, InvalidEventType, PayloadError) as exc:
            form.add_error(None, str(exc))
        else:
            delivery = Delivery.objects.filter(event=event).values_list("pk", flat=True).first()
            return redirect("delivery", delivery, notice="test-sent")
    status = 400 if form.errors else 200
    return render(request, "endpoint_test.html", {"endpoint": endpoint, "form": form}, status)


@portal_view
@require_http_methods(["GET", "POST"])
def endpoint_recover(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = owned_endpoint(request, pk)
    if request.method == "POST":
        form = RecoverForm(request.POST)
        if form.is_valid():
            count = recover_deliveries(
                endpoint, form.cleaned_data["since"], form.cleaned_data["until"]
            )
            return redirect("deliveries", endpoint.pk, notice="recovered", n=count)
    else:
        since = timezone.now() - WINDOW
        form = RecoverForm(initial={"since": since.replace(second=0, microsecond=0)})
    status = 400 if form.errors else 200
    return render(request, "endpoint_recover.html", {"endpoint": endpoint, "form": form}, status)


# -- the delivery log -----------------------------------------------------------------------------


def event_type_q(pattern: str) -> Q:
    if pattern in ("", "*"):
        return Q()
    if pattern.endswith(".*"):
        return Q(event__type__startswith=pattern[:-1])
    return Q(event__type=pattern)


@portal_view
@require_safe
def deliveries(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = owned_endpoint(request, pk)
    filters = DeliveryFilterForm(request.GET)
    rows: list[Delivery] = []
    older = None
    if filters.is_valid():
        query = (
            Delivery.objects.filter(endpoint=endpoint)
            .filter(event_type_q(filters.cleaned_data["event_type"]))
            .select_related("event")
            .only(
                "pk",
                "status",
                "attempts",
                "last_status_code",
                "last_error",
                "created_at",
                "next_attempt_at",
                "completed_at",
                "event__id",
                "event__type",
                "event__is_test",
            )
            .order_by("-pk")
        )
        if filters.cleaned_data["status"]:
            query = query.filter(status=filters.cleaned_data["status"])
        if filters.cleaned_data["before"]:
            query = query.filter(pk__lt=filters.cleaned_data["before"])
        rows = list(query[: DELIVERIES_PER_PAGE + 1])
        if len(rows) > DELIVERIES_PER_PAGE:
            rows = rows[:DELIVERIES_PER_PAGE]
            params = {k: v for k, v in filters.cleaned_data.items() if v and k != "before"}
            older = "?" + urlencode({**params, "before": rows[-1].pk})
    status = 200 if filters.is_valid() else 400
    return render(
        request,
        "deliveries.html",
        {
            "endpoint": endpoint,
            "filters": filters,
            "rows": rows,
            "older": older,
            "event_types": list(declared_event_types()),
            "recover_form": RecoverForm(
                initial={"since": (timezone.now() - WINDOW).replace(second=0, microsecond=0)}
            ),
        },
        status,
    )


@portal_view
@require_safe
def delivery(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = owned_delivery(request, pk)
    attempts = list(delivery.attempt_log.order_by("number"))
    for attempt in attempts:
        attempt.request_headers_text = pretty(attempt.request_headers)  # type: ignore[attr-defined]
        attempt.response_headers_text = pretty(attempt.response_headers)  # type: ignore[attr-defined]
    return render(
        request,
        "delivery.html",
        {
            "delivery": delivery,
            "endpoint": delivery.endpoint,
            "attempts": attempts,
            "payload": pretty(delivery.event.data),
            "retryable": delivery.status in (Delivery.Status.FAILED, Delivery.Status.CANCELLED),
        },
    )


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@portal_view
@require_POST
def delivery_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """As the API's retry: only a failed or cancelled delivery is sent again."""
    delivery = owned_delivery(request, pk)
    if delivery.status in (Delivery.Status.PENDING, Delivery.Status.SUCCEEDED):
        return refused_action(
            request,
            delivery.endpoint,
            f"This delivery is {delivery.status}: only failed or cancelled "
            "deliveries can be retried.",
        )
    retry_deliveries(Delivery.objects.filter(pk=delivery.pk))
    return redirect("delivery", delivery.pk, notice="retried")


# -- reference pages ------------------------------------------------------------------------------


@portal_view
@require_safe
def event_types(request: HttpRequest) -> HttpResponse:
    return render(
        request, "event_types.html", {"catalogue": subscribable_types(), "nav": "event_types"}
    )


@portal_view
@require_safe
def verify(request: HttpRequest) -> HttpResponse:
    return render(request, "verify.html", {"snippets": SNIPPETS, "nav": "verify"})
