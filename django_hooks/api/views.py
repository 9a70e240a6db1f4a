"""The REST API: endpoints, event types, events and their feed, deliveries.

Every queryset is filtered by the request's owner (``API_OWNER``): another owner's object is a
404. Authentication and permission classes are the project's DRF defaults (or a subclass's
``authentication_classes`` and ``permission_classes``), plus ``HasOwner``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework import mixins, routers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from django_hooks.api import serializers as s
from django_hooks.api.exceptions import CodedAPIException, Conflict
from django_hooks.api.feed import (
    MAX_LIMIT,
    MAX_WAIT,
    Feed,
    InvalidCursor,
    TooManyWaiters,
    check_cursor,
)
from django_hooks.api.idempotency import idempotent
from django_hooks.api.permissions import HasOwner, request_owner
from django_hooks.api.schema import (
    SPECTACULAR,
    OpenApiParameter,
    OpenApiTypes,
    extend_schema,
    view_schema,
)
from django_hooks.core.errors import PayloadError
from django_hooks.event_types import declared_event_types, is_pattern, types_q
from django_hooks.exceptions import EndpointNotReceiving, InvalidEventType
from django_hooks.models import Delivery, Endpoint, Event, owner_q
from django_hooks.outbound.operations import delivery_counts, recover_deliveries, send_test_event
from django_hooks.outbound.state import replay_missing, retry_deliveries

__all__ = ["DeliveryViewSet", "EndpointViewSet", "EventTypeViewSet", "EventViewSet", "OwnedViewSet"]

STATS_WINDOW = dt.timedelta(hours=24)


class NewestFirst(CursorPagination):
    ordering = "-pk"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 250

    def decode_cursor(self, request: Request) -> Any:
        # A bad cursor is bad input (400), not a missing page (DRF's 404).
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self.invalid_cursor() from None
        position = cursor.position if cursor is not None else None
        # Ids are short and printable; a NUL would even fail the query on PostgreSQL.
        if position is not None and (len(position) > 64 or not position.isprintable()):
            raise self.invalid_cursor()
        return cursor

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        # A cursor that decodes but whose position is no id of these rows (a tampered one)
        # fails when the page is filtered on it.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, OverflowError, DjangoValidationError):
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise self.invalid_cursor() from None

    @staticmethod
    def invalid_cursor() -> ValidationError:
        return ValidationError(
            {"cursor": ["Invalid cursor: follow the next and previous links unchanged."]}
        )


class EventStreamRenderer(BaseRenderer):
    """Lets ``Accept: text/event-stream`` through content negotiation (errors render as JSON)."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data: Any, media_type: Any = None, context: Any = None) -> bytes:
        return JSONRenderer().render(data)


def _set_below_apiview(view: Any, name: str) -> bool:
    """Whether ``as_view(name=...)`` or a class between ``type(view)`` and DRF's ``APIView``
    sets ``name``."""
    if name in vars(view):
        return True
    for klass in type(view).__mro__:
        if klass is APIView:
            return False
        if name in vars(klass):
            return True
    return False


class OwnerRequired:
    """The view's own DRF authentication and permission classes when a subclass sets them,
    else the project's defaults read per request (``APIView`` reads them once, at import);
    ``HasOwner`` is always added."""

    def get_authenticators(self) -> list[Any]:
        if _set_below_apiview(self, "authentication_classes"):
            return super().get_authenticators()  # type: ignore[misc]
        return [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]

    def get_permissions(self) -> list[Any]:
        if _set_below_apiview(self, "permission_classes"):
            permissions = super().get_permissions()  # type: ignore[misc]
        else:
            permissions = [perm() for perm in api_settings.DEFAULT_PERMISSION_CLASSES]
        return [*permissions, HasOwner()]


class APIRoot(OwnerRequired, routers.APIRootView):
    """Links to the API's routes; refused like every other route without an owner."""

    api_root_dict: dict[str, str]  # name -> URL name, given by the router

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not SPECTACULAR:  # schema/ would only answer 404 naming the extra
            self.api_root_dict = {k: v for k, v in self.api_root_dict.items() if k != "schema"}
        return super().get(request, *args, **kwargs)


class OwnedViewSet(OwnerRequired, viewsets.GenericViewSet):
    """Owner-scoped: the project's DRF authentication and permissions, plus an owner."""

    schema = view_schema()

    @property
    def owner(self) -> Any:
        return request_owner(self.request)

    # Any path segment routes here, so a malformed id is this API's JSON 404, not Django's page.
    lookup_value_regex = "[^/]+"
    id_pattern = re.compile(r"^[0-9]{1,18}$")

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # DRF's default handler answers {"detail": ...}; ours also name the code. A project's
        # own EXCEPTION_HANDLER, which answers in another shape, is left as it is.
        data = getattr(response, "data", None)
        if (
            isinstance(exc, CodedAPIException)
            and isinstance(data, dict)
            and set(data) == {"detail"}
        ):
            data["code"] = getattr(exc.detail, "code", exc.default_code)
        return response

    def get_object(self) -> Any:
        if not self.id_pattern.match(
            self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, "")
        ):
            raise NotFound()
        return super().get_object()


def _query(request: Request, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def _type_patterns(value: str | None) -> list[str]:
    patterns = [p.strip() for p in (value or "").split(",") if p.strip()]
    bad = [p for p in patterns if not is_pattern(p)]
    if bad:
        raise ValidationError(
            {"types": [f'{bad[0]!r} is not an event type or pattern such as "order.*".']}
        )
    return patterns


# -- endpoints ------------------------------------------------------------------------------------


class EndpointViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnedViewSet,
):
    serializer_class = s.EndpointSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[Endpoint]:
        return Endpoint.objects.filter(owner_q(self.owner))

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save(owner=self.owner)

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    @extend_schema(request=s.TestEventSerializer, responses={202: s.EventSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test event to this endpoint alone."""
        endpoint = self.get_object()
        body = s.TestEventSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            event = send_test_event(endpoint, **body.validated_data)
        except EndpointNotReceiving as exc:
            raise Conflict(str(exc), code="endpoint_not_receiving") from None
        except (InvalidEventType, PayloadError) as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(s.EventSerializer(event).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.SecretSerializer)
    @action(detail=True, methods=["get"])
    def secret(self, request: Request, pk: str | None = None) -> Response:
        """The endpoint's current signing secret."""
        endpoint = self.get_object()
        return Response({"secret": endpoint.secret}, headers={"Cache-Control": "no-store"})

    @extend_schema(request=s.RotateSecretSerializer, responses=s.RotatedSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @idempotent
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new secret; the old one keeps signing for ``grace_period`` seconds."""
        endpoint = self.get_object()
        body = s.RotateSecretSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        secret = endpoint.rotate_secret(body.validated_data.get("grace_period"))
        previous = endpoint.previous_secrets[0]["expires_at"] if endpoint.previous_secrets else None
        return Response(
            {"secret": secret, "previous_expires_at": previous},
            headers={"Cache-Control": "no-store"},
        )

    @extend_schema(responses=s.PublicKeySerializer)
    @action(detail=True, methods=["get"], url_path="public-key")
    def public_key(self, request: Request, pk: str | None = None) -> Response:
        """The Ed25519 public key that verifies this endpoint's v1a signatures."""
        endpoint = self.get_object()
        public_key = endpoint.public_key
        if public_key is None:
            return Response(
                {
                    "detail": f"Endpoint {endpoint.pk} has no Ed25519 signing key: set its "
                    'signing_scheme to "ed25519" or "hmac+ed25519", or call '
                    "rotate-signing-key/ to create one.",
                    "code": "no_signing_key",
                },
                status=409,
            )
        return Response(_public_keys(endpoint, public_key))

    @extend_schema(request=s.RotateSecretSerializer, responses=s.PublicKeySerializer)
    @action(detail=True, methods=["post"], url_path="rotate-signing-key")
    @idempotent
    def rotate_signing_key(self, request: Request, pk: str | None = None) -> Response:
        """A new Ed25519 signing key; the old one keeps signing for ``grace_period`` seconds.
        Answers the new public key (the signing key itself is never served)."""
        endpoint = self.get_object()
        body = s.RotateSecretSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        public_key = endpoint.rotate_signing_key(body.validated_data.get("grace_period"))
        return Response(_public_keys(endpoint, public_key))

    @extend_schema(parameters=[s.WindowSerializer], responses=s.StatsSerializer)
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str | None = None) -> Response:
        """Delivery outcomes over a window (default: the last 24 hours)."""
        endpoint = self.get_object()
        window = _query(request, s.WindowSerializer)
        until = window.get("until") or timezone.now()
        since = window.get("since") or until - STATS_WINDOW
        if until <= since:
            raise ValidationError({"since": ["Must be earlier than until."]})
        counts = delivery_counts([endpoint.pk], since=since, until=until)[endpoint.pk]
        return Response(
            {
                "since": since,
                "until": until,
                "total": counts.total,
                **{name: getattr(counts, name) for name in Delivery.Status.values},
                "success_rate": counts.success_rate,
            }
        )

    @extend_schema(request=s.RecoverSerializer, responses={202: s.RecoveredSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def recover(self, request: Request, pk: str | None = None) -> Response:
        """Send again every failed delivery created in ``[since, until)``."""
        endpoint = self.get_object()
        body = s.RecoverSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = recover_deliveries(
            endpoint, body.validated_data["since"], body.validated_data.get("until")
        )
        return Response({"recovered": count}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.ReplayMissingSerializer, responses={202: s.ReplayedSerializer})
    @action(detail=True, methods=["post"], url_path="replay-missing")
    @idempotent
    def replay_missing(self, request: Request, pk: str | None = None) -> Response:
        """Enable a disabled endpoint and send it the events it missed while disabled (by
        default its disabled spell; ``since``/``until`` choose another window). Events it
        already has a delivery of are skipped, so calling it again adds nothing."""
        endpoint = self.get_object()
        body = s.ReplayMissingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if endpoint.disabled_at is not None and endpoint.disabled_by == "operator":
            reason = endpoint.disabled_reason or "no reason given"
            raise PermissionDenied(
                f"This endpoint was disabled by an operator ({reason}); only an operator can "
                "enable it again."
            )
        try:
            done = replay_missing(
                endpoint,
                since=body.validated_data.get("since"),
                until=body.validated_data.get("until"),
            )
        except ValueError as exc:
            raise ValidationError({"since": [str(exc)]}) from None
        return Response(
            {
                "replayed": done.count,
                "since": done.since,
                "until": done.until,
                "enabled": done.enabled,
            },
            status=status.HTTP_202_ACCEPTED,
        )


def _public_keys(endpoint: Endpoint, public_key: str) -> dict[str, Any]:
    return {"public_key": public_key, "previous_public_keys": endpoint.previous_public_keys()}


# -- event types ----------------------------------------------------------------------------------


class EventTypeViewSet(OwnedViewSet):
    serializer_class = s.EventTypeSerializer
    pagination_class = None

    @extend_schema(responses=s.EventTypeSerializer(many=True))
    def list(self, request: Request) -> Response:
        """Every event type this site sends, with its JSON Schema when declared."""
        types = declared_event_types().values()
        return Response(s.EventTypeSerializer(types, many=True).data)


# -- events and the feed --------------------------------------------------------------------------


class EventFilter(s.WindowSerializer):
    type = serializers.CharField(required=False, help_text='Comma-separated; "order.*" works.')


class FeedQuery(serializers.Serializer):
    after = serializers.CharField(
        required=False, allow_blank=True, help_text="The `next` cursor of a page, or `now`."
    )
    types = serializers.CharField(
        required=False, allow_blank=True, help_text='Comma-separated types; "order.*" works.'
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=100)
    wait = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=MAX_WAIT,
        default=0,
        help_text="Seconds to wait for an event (long poll).",
    )


class StreamQuery(serializers.Serializer):
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Resume after this cursor (or Last-Event-ID), or `now`.",
    )
    types = serializers.CharField(required=False, allow_blank=True)


class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    pagination_class = NewestFirst
    id_pattern = re.compile(r"^msg_[0-9A-Z]{26}$")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return s.EventDetailSerializer if self.action == "retrieve" else s.EventSerializer

    def get_queryset(self) -> QuerySet[Event]:
        events = Event.objects.filter(owner_q(self.owner))
        if self.action == "retrieve":
            return events.prefetch_related(
                Prefetch("deliveries", queryset=Delivery.objects.order_by("pk"))
            )
        if self.action != "list":
            return events
        events = events.filter(is_test=False)  # a test send is not an event of the account
        query = _query(self.request, EventFilter)
        patterns = _type_patterns(query.get("type"))
        if patterns:
            events = events.filter(types_q(patterns))
        if query.get("since"):
            events = events.filter(created_at__gte=query["since"])
        if query.get("until"):
            events = events.filter(created_at__lt=query["until"])
        return events

    @extend_schema(parameters=[EventFilter])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Events, newest first."""
        return super().list(request, *args, **kwargs)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Errors of the stream route are JSON even when the client accepts only events.
        if isinstance(response, Response) and isinstance(
            getattr(request, "accepted_renderer", None), EventStreamRenderer
        ):
            request.accepted_renderer, request.accepted_media_type = (
                JSONRenderer(),
                "application/json",
            )
        return super().finalize_response(request, response, *args, **kwargs)

    def _feed(self, types: str | None) -> Feed:
        return Feed(self.owner, _type_patterns(types))

    @extend_schema(parameters=[FeedQuery], responses=s.FeedPageSerializer)
    @action(detail=False, methods=["get"], pagination_class=None)
    def feed(self, request: Request) -> Response:
        """Events oldest first from a cursor; ``wait`` long-polls for the next one."""
        query = _query(request, FeedQuery)
        try:
            after = check_cursor(query.get("after"))
        except InvalidCursor as exc:
            raise ValidationError({"after": [str(exc)]}) from None
        try:
            page = self._feed(query.get("types")).wait(after, query["limit"], query["wait"])
        except TooManyWaiters as exc:
            return _too_many_waiters(exc)
        return Response(
            {
                "data": s.FeedEventSerializer(page.events, many=True).data,
                "next": page.next,
                "has_more": page.has_more,
            }
        )

    @extend_schema(
        parameters=[StreamQuery, OpenApiParameter("Last-Event-ID", str, "header", required=False)],
        responses={(200, "text/event-stream"): OpenApiTypes.STR if SPECTACULAR else None},
    )
    @action(
        detail=False,
        methods=["get"],
        pagination_class=None,
        renderer_classes=[JSONRenderer, EventStreamRenderer],
    )
    def stream(self, request: Request) -> StreamingHttpResponse:
        """Server-sent events: ``id:`` is the cursor; reconnect with ``Last-Event-ID``."""
        query = _query(request, StreamQuery)
        try:
            after = check_cursor(request.headers.get("Last-Event-ID") or query.get("after"))
        except InvalidCursor as exc:
            raise ValidationError({"after": [str(exc)]}) from None
        feed = self._feed(query.get("types"))
        try:
            content = feed.open_stream(
                after, asynchronous=isinstance(request._request, ASGIRequest)
            )
        except TooManyWaiters as exc:
            return _too_many_waiters(exc)
        response = StreamingHttpResponse(content, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
        return response


def _too_many_waiters(exc: TooManyWaiters) -> Response:
    response = Response(
        {"detail": str(exc), "code": "too_many_waiters", "limit": exc.limit},
        status=status.HTTP_429_TOO_MANY_REQUESTS,
    )
    response["Retry-After"] = str(exc.retry_after)
    return response


# -- deliveries -----------------------------------------------------------------------------------


class DeliveryFilter(serializers.Serializer):
    endpoint = serializers.IntegerField(required=False, min_value=1, max_value=10**18)
    event = serializers.CharField(required=False, max_length=40)
    status = serializers.ChoiceField(required=False, choices=Delivery.Status.choices)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    pagination_class = NewestFirst

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return s.DeliveryDetailSerializer if self.action == "retrieve" else s.DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        deliveries = Delivery.objects.filter(owner_q(self.owner, prefix="endpoint__"))
        deliveries = deliveries.select_related("event")
        if self.action == "retrieve":
            return deliveries.prefetch_related("attempt_log")
        if self.action != "list":
            return deliveries
        query = _query(self.request, DeliveryFilter)
        for name in ("endpoint", "event", "status"):
            if name in query:
                deliveries = deliveries.filter(**{name: query[name]})
        return deliveries

    @extend_schema(parameters=[DeliveryFilter])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Deliveries, newest first."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={202: s.DeliverySerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Send a failed or cancelled delivery again now."""
        delivery = self.get_object()
        if delivery.status in (Delivery.Status.PENDING, Delivery.Status.SUCCEEDED):
            raise Conflict(
                f"Delivery {delivery.pk} is {delivery.status}: only failed or cancelled "
                "deliveries can be retried.",
                code="not_retryable",
            )
        retry_deliveries(Delivery.objects.filter(pk=delivery.pk))
        delivery.refresh_from_db()
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
