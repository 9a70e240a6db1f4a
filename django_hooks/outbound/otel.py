"""OpenTelemetry spans and metrics of the sending side, through the global tracer and meter
providers the project configures (``opentelemetry-sdk``, ``opentelemetry-instrument``...).

Imported only by ``django_hooks.outbound.telemetry`` once ``TELEMETRY`` is on. Spans and
metrics carry ids, types, outcomes, status codes and times: never a payload, a header, a
secret, nor any part of a URL but its host and port (a receiver's path or query often holds a
token, as Slack's do).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from django.db import connections, router
from django.db.models import Count, Q
from django.utils import timezone
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from django_hooks import __version__
from django_hooks.models import Delivery, Endpoint, Event

if TYPE_CHECKING:
    from django_hooks.outbound.delivery import BatchResult
    from django_hooks.outbound.transport import HTTPResult

__all__: list[str] = []

logger = logging.getLogger("django_hooks")

T = TypeVar("T")

# Attribute names: OpenTelemetry's own where one exists, ``webhook.*`` for the rest.
ENDPOINT_ID = "webhook.endpoint.id"
EVENT_ID = "webhook.event.id"
EVENT_TYPE = "webhook.event.type"
DELIVERY_ID = "webhook.delivery.id"
DELIVERIES = "webhook.event.deliveries"
DUPLICATE = "webhook.event.duplicate"
ATTEMPT = "webhook.attempt.number"
DURATION = "webhook.attempt.duration_ms"
OUTCOME = "webhook.outcome"
ENDPOINT_STATE = "webhook.endpoint.state"
CIRCUIT_STATE = "webhook.circuit.state"

#: Seconds: from a few milliseconds (a fast drain) to the last retry (about 27 hours).
DELIVERY_BUCKETS = [
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    1800,
    3600,
    7200,
    21600,
    43200,
    86400,
    172800,
]
LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]

_propagator = TraceContextTextMapPropagator()


def traceparent(span: Span) -> str:
    """The W3C ``traceparent`` of ``span`` ("" when it has no valid context)."""
    context = span.get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class Sending:
    """The span of one ``send_event``, and the traceparent its event stores."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.traceparent = traceparent(span)

    def recorded(self, event: Event, deliveries: int | None) -> None:
        """``deliveries`` None: the idempotency key returned an event recorded before."""
        self.span.set_attribute(EVENT_ID, event.pk)
        if deliveries is None:
            self.span.set_attribute(DUPLICATE, True)
        else:
            self.span.set_attribute(DELIVERIES, deliveries)


class AttemptSpan:
    """The span of one attempt: started in the worker thread that POSTs, ended by the results
    write once the outcome is known (its end time is the response's)."""

    def __init__(self, span: Span) -> None:
        self.span = span

    @property
    def traceparent(self) -> str:
        return traceparent(self.span)

    def end(self, outcome: str, response: HTTPResult, at: dt.datetime) -> None:
        span = self.span
        span.set_attribute(OUTCOME, outcome)
        span.set_attribute(DURATION, response.duration_ms)
        if response.status_code is not None:
            span.set_attribute("http.response.status_code", response.status_code)
        if outcome != "succeeded":
            # A category, never the error's text (it may quote the receiver's URL).
            if response.status_code is not None:
                error = str(response.status_code)
            else:
                error = "unreachable" if response.unreachable else "error"
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=int(at.timestamp() * 1e9))


class Telemetry:
    """The tracer, the instruments and the gauges' callbacks of one process."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("django_hooks", __version__)
        meter = metrics.get_meter("django_hooks", __version__)
        self.deliveries = meter.create_counter(
            "django_hooks.deliveries",
            unit="{delivery}",
            description="Deliveries that ended, by outcome (succeeded, failed).",
        )
        self.attempts = meter.create_counter(
            "django_hooks.attempts",
            unit="{attempt}",
            description="Delivery attempts by outcome (succeeded, retrying, failed, gone).",
        )
        self.delivery_time = meter.create_histogram(
            "django_hooks.delivery.duration",
            unit="s",
            description="Time from an event to its successful delivery, retries included.",
            explicit_bucket_boundaries_advisory=DELIVERY_BUCKETS,
        )
        self.queue_lag = meter.create_histogram(
            "django_hooks.queue.lag",
            unit="s",
            description="Time from a delivery being due to its attempt starting.",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS,
        )
        meter.create_observable_gauge(
            "django_hooks.endpoints",
            callbacks=[endpoint_states],
            unit="{endpoint}",
            description="Endpoints by state (receiving, failing, disabled, inactive).",
        )
        meter.create_observable_gauge(
            "django_hooks.circuits",
            callbacks=[circuit_states],
            unit="{endpoint}",
            description="Receiving endpoints by circuit state (closed, open, half_open).",
        )

    # -- send_event ------------------------------------------------------------------------------

    @contextmanager
    def sending(self, event_type: str) -> Iterator[Sending]:
        """The span of one ``send_event`` (a child of the caller's, the current one)."""
        with self.tracer.start_as_current_span(
            f"send {event_type}",
            kind=SpanKind.PRODUCER,
            attributes={EVENT_TYPE: event_type},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield Sending(span)
            except BaseException as exc:
                # The exception's class only: its message may quote the data.
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR))
                raise

    # -- attempts (the engine's threads, then its results write) ---------------------------------

    def start_attempt(self, delivery: Delivery, now: dt.datetime) -> AttemptSpan:
        """In the worker thread, just before the POST: the attempt's span, continuing the trace
        ``send_event`` stored; and the queue lag of this delivery."""
        event, endpoint = delivery.event, delivery.endpoint
        if delivery.next_attempt_at is not None:
            lag = (now - delivery.next_attempt_at).total_seconds()
            self.queue_lag.record(max(lag, 0.0))
        parent = None
        if event.traceparent:
            parent = _propagator.extract({"traceparent": event.traceparent})
        parts = urlsplit(endpoint.url)
        attributes: dict[str, Any] = {
            ENDPOINT_ID: endpoint.pk,
            EVENT_ID: event.pk,
            EVENT_TYPE: event.type,
            DELIVERY_ID: delivery.pk,
            ATTEMPT: delivery.attempts + 1,
            "http.request.method": "POST",
            "server.address": parts.hostname or "",
        }
        with suppress(ValueError):  # a port out of range: the attribute is left out
            attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
        span = self.tracer.start_span(
            f"deliver {event.type}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=time.time_ns(),
        )
        return AttemptSpan(span)

    def record_results(self, result: BatchResult, outcomes: Iterable[str]) -> None:
        """After a group of results is written: the counters and the delivery time."""
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome] = counts.get(outcome, 0) + 1
        for outcome, count in counts.items():
            self.attempts.add(count, {OUTCOME: outcome})
        if result.succeeded:
            self.deliveries.add(len(result.succeeded), {OUTCOME: "succeeded"})
        if result.failed:
            self.deliveries.add(len(result.failed), {OUTCOME: "failed"})
        for delivery in result.succeeded:
            if delivery.completed_at is not None:
                elapsed = (delivery.completed_at - delivery.event.created_at).total_seconds()
                self.delivery_time.record(max(elapsed, 0.0))


# -- the gauges (read by the metric reader's thread, or a Prometheus scrape's) -------------------


def _read(query: Callable[[], T]) -> T:
    """Run ``query``, closing the connection afterwards if it opened one: a reader's or an
    exporter's thread must not keep a database connection per scrape."""
    connection = connections[router.db_for_read(Endpoint)]
    opened = connection.connection is None
    try:
        return query()
    finally:
        if opened and not connection.in_atomic_block:
            connection.close()


def endpoint_states(options: CallbackOptions) -> list[Observation]:
    receiving = Q(is_active=True, disabled_at__isnull=True)
    counts = _read(
        lambda: Endpoint.objects.aggregate(
            receiving=Count("pk", filter=receiving & Q(failing_since__isnull=True)),
            failing=Count("pk", filter=receiving & Q(failing_since__isnull=False)),
            disabled=Count("pk", filter=Q(disabled_at__isnull=False)),
            inactive=Count("pk", filter=Q(is_active=False, disabled_at__isnull=True)),
        )
    )
    return [Observation(value, {ENDPOINT_STATE: state}) for state, value in counts.items()]


def circuit_states(options: CallbackOptions) -> list[Observation]:
    now = timezone.now()
    tripped = Q(circuit_failures__gt=0)
    paused = Q(paused_until__gt=now)
    counts = _read(
        lambda: Endpoint.objects.receiving().aggregate(
            closed=Count("pk", filter=Q(circuit_failures=0)),
            open=Count("pk", filter=tripped & paused),
            half_open=Count("pk", filter=tripped & ~paused),
        )
    )
    return [Observation(value, {CIRCUIT_STATE: state}) for state, value in counts.items()]
