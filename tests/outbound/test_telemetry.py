"""OpenTelemetry (TELEMETRY): spans and metrics read back from the SDK's in-memory exporters, on
the real engine (a drain in this process, a receiver on 127.0.0.1, the real database and
Redis); and, in subprocesses, that nothing is imported while it is off and the docs' Prometheus
set-up serves the metrics."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import django_hooks
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.outbound.engine import Drain
from django_hooks.testing import free_port
from tests.receiver import Reply, hooks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]

ROOT = Path(__file__).resolve().parents[2]
_spans = InMemorySpanExporter()
_reader = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def sdk():
    """The global providers, as a project sets them up (once per process: OpenTelemetry's rule)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_spans))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_reader]))


@pytest.fixture
def spans():
    _spans.clear()
    return _spans


def telemetry(**overrides):
    return hooks(TELEMETRY=True, **overrides)


def points() -> dict[tuple[str, tuple], object]:
    """Every data point now, by (metric name, sorted attributes)."""
    found = {}
    data = _reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found[(metric.name, tuple(sorted(point.attributes.items())))] = point
    return found


def counted(before, after, name, **attributes) -> float:
    """How much a counter (its value) or a histogram (its count) grew between two readings."""
    key = (name, tuple(sorted(attributes.items())))

    def value(reading):
        point = reading.get(key)
        if point is None:
            return 0
        return getattr(point, "value", None) if hasattr(point, "value") else point.count

    return value(after) - value(before)


def by_name(spans, name):
    return [span for span in spans.get_finished_spans() if span.name == name]


# -- spans and the traceparent ------------------------------------------------------------------


def test_a_request_span_flows_to_send_event_the_attempts_and_an_opted_in_receiver(receiver, spans):
    opted_in = Endpoint.objects.create(url=receiver.url("/traced"), send_traceparent=True)
    plain = Endpoint.objects.create(url=receiver.url("/plain"))
    tracer = trace.get_tracer("the-site")
    with telemetry():
        with tracer.start_as_current_span("POST /orders/") as request_span:
            event = django_hooks.send_event("order.paid", {"id": 42})
        Drain().run()

    (send,) = by_name(spans, "send order.paid")
    assert send.kind is SpanKind.PRODUCER
    assert send.parent.span_id == request_span.get_span_context().span_id
    assert send.attributes["webhook.event.id"] == event.pk
    assert send.attributes["webhook.event.type"] == "order.paid"
    assert send.attributes["webhook.event.deliveries"] == 2
    # The event stores the send span's context: where its attempts continue the trace.
    trace_id = f"{send.context.trace_id:032x}"
    event.refresh_from_db()
    flags = f"{int(send.context.trace_flags):02x}"  # sampled (and, on newer SDKs, random)
    assert event.traceparent == f"00-{trace_id}-{send.context.span_id:016x}-{flags}"

    attempts = {
        span.attributes["webhook.endpoint.id"]: span
        for span in by_name(spans, "deliver order.paid")
    }
    assert set(attempts) == {opted_in.pk, plain.pk}
    for span in attempts.values():
        assert span.kind is SpanKind.CLIENT
        assert span.context.trace_id == send.context.trace_id
        assert span.parent.span_id == send.context.span_id
        assert span.attributes["webhook.attempt.number"] == 1
        assert span.attributes["webhook.outcome"] == "succeeded"
        assert span.attributes["http.response.status_code"] == 200
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["webhook.attempt.duration_ms"] >= 0
        assert span.end_time > span.start_time
        assert span.status.status_code is StatusCode.UNSET
    # The opted-in receiver's parent is its attempt's span; the other gets no header.
    (traced,) = receiver.to("/traced")
    span = attempts[opted_in.pk]
    assert traced.headers["traceparent"] == f"00-{trace_id}-{span.context.span_id:016x}-{flags}"
    assert "traceparent" not in receiver.to("/plain")[0].headers


def test_each_attempt_is_a_span_with_its_outcome(receiver, spans):
    Endpoint.objects.create(url=receiver.url("/flaky"))
    Endpoint.objects.create(url=receiver.url("/broken"))
    Endpoint.objects.create(url=receiver.url("/gone"))
    receiver.script("/flaky", Reply(500), Reply(200))
    receiver.script("/broken", Reply(503), Reply(502))
    receiver.script("/gone", Reply(410))
    with telemetry(RETRY_SCHEDULE=[0]):
        django_hooks.send_event("order.paid", {})
        Drain().run()
        Drain().run()

    outcomes = {}
    for span in by_name(spans, "deliver order.paid"):
        path = Endpoint.objects.get(pk=span.attributes["webhook.endpoint.id"]).url.rsplit("/", 1)[1]
        outcomes.setdefault(path, []).append(
            (
                span.attributes["webhook.attempt.number"],
                span.attributes["webhook.outcome"],
                span.attributes.get("error.type"),
                span.status.status_code,
            )
        )
    assert sorted(outcomes["flaky"]) == [
        (1, "retrying", "500", StatusCode.ERROR),
        (2, "succeeded", None, StatusCode.UNSET),
    ]
    assert sorted(outcomes["broken"]) == [
        (1, "retrying", "503", StatusCode.ERROR),
        (2, "failed", "502", StatusCode.ERROR),
    ]
    assert outcomes["gone"] == [(1, "gone", "410", StatusCode.ERROR)]


def test_an_unreachable_receiver_is_an_error_category_not_its_message(spans):
    Endpoint.objects.create(url="http://127.0.0.1:9/closed")
    with telemetry(RETRY_SCHEDULE=[60]):
        django_hooks.send_event("order.paid", {})
        Drain().run()
    (span,) = by_name(spans, "deliver order.paid")
    assert span.attributes["error.type"] == "unreachable"
    assert "http.response.status_code" not in span.attributes
    assert span.status.description is None


def test_no_payload_secret_header_value_or_url_path_and_query_in_any_span(receiver, spans):
    endpoint = Endpoint.objects.create(
        url=receiver.url("/services/T0/B0/path-token?token=query-token"),
        headers={"Authorization": "Bearer header-token"},
        send_traceparent=True,
    )
    with telemetry():
        django_hooks.send_event("order.paid", {"card": "payload-value"}, idempotency_key="key-1")
        Drain().run()
        with pytest.raises(ValueError):  # a failing send_event: its span names the class only
            django_hooks.send_event("order.paid", {"card": "payload-value", "bad": object()})
    secrets = [
        endpoint.secret,
        "payload-value",
        "path-token",
        "query-token",
        "header-token",
        "/services/",
        "key-1",
    ]
    finished = spans.get_finished_spans()
    assert len(finished) == 3
    recorded = json.dumps([span.to_json() for span in finished])
    for secret in secrets:
        assert secret not in recorded
    failed = [span for span in finished if span.status.status_code is StatusCode.ERROR]
    assert [span.attributes["error.type"] for span in failed] == ["PayloadError"]


def test_off_there_are_no_spans_and_no_stored_context(receiver, spans):
    Endpoint.objects.create(url=receiver.url("/traced"), send_traceparent=True)
    with hooks(), trace.get_tracer("the-site").start_as_current_span("request"):
        event = django_hooks.send_event("order.paid", {})
    with hooks():
        Drain().run()
    assert spans.get_finished_spans() == (by_name(spans, "request")[0],)
    assert Event.objects.get(pk=event.pk).traceparent == ""
    assert "traceparent" not in receiver.to("/traced")[0].headers


def test_a_worker_without_telemetry_still_passes_the_stored_context_on(receiver, spans):
    Endpoint.objects.create(url=receiver.url("/traced"), send_traceparent=True)
    with telemetry():
        event = django_hooks.send_event("order.paid", {})
    with hooks():  # this worker has TELEMETRY off
        Drain().run()
    event.refresh_from_db()
    assert (
        event.traceparent and receiver.to("/traced")[0].headers["traceparent"] == event.traceparent
    )


def test_a_duplicate_send_is_marked_and_records_nothing(spans):
    with telemetry():
        first = django_hooks.send_event("order.paid", {}, idempotency_key="once")
        again = django_hooks.send_event("order.paid", {}, idempotency_key="once")
    assert first.pk == again.pk
    spans_ = by_name(spans, "send order.paid")
    assert [span.attributes.get("webhook.event.duplicate") for span in spans_] == [None, True]
    assert "webhook.event.deliveries" not in spans_[1].attributes


# -- metrics -----------------------------------------------------------------------------------


def test_deliveries_attempts_delivery_time_and_queue_lag(receiver):
    Endpoint.objects.create(url=receiver.url("/flaky"))
    Endpoint.objects.create(url=receiver.url("/broken"))
    receiver.default = Reply(500)
    receiver.script("/flaky", Reply(500), Reply(200), Reply(200))
    before = points()
    with telemetry(RETRY_SCHEDULE=[0]):
        django_hooks.send_event("order.paid", {})
        django_hooks.send_event("order.paid", {})
        Drain().run()
        Drain().run()
    after = points()
    # Two events × two endpoints: /flaky fails once and then answers; /broken never does.
    outcome = "webhook.outcome"
    assert counted(before, after, "django_hooks.attempts", **{outcome: "succeeded"}) == 2
    assert counted(before, after, "django_hooks.attempts", **{outcome: "retrying"}) == 3
    assert counted(before, after, "django_hooks.attempts", **{outcome: "failed"}) == 2
    assert counted(before, after, "django_hooks.deliveries", **{outcome: "succeeded"}) == 2
    assert counted(before, after, "django_hooks.deliveries", **{outcome: "failed"}) == 2
    assert counted(before, after, "django_hooks.delivery.duration") == 2
    assert counted(before, after, "django_hooks.queue.lag") == 7
    assert Delivery.objects.filter(status="succeeded").count() == 2


def test_the_delivery_time_runs_from_the_event_to_the_success(receiver):
    Endpoint.objects.create(url=receiver.url())
    with telemetry():
        event = django_hooks.send_event("order.paid", {})
        # As if the event had waited an hour (a retry, a worker down).
        Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
        before = points()
        Drain().run()
    after = points()
    key = ("django_hooks.delivery.duration", ())
    grew = after[key].sum - (before[key].sum if key in before else 0)
    assert 3600 <= grew < 3660


def test_endpoints_and_circuits_gauges(receiver):
    now = timezone.now()
    Endpoint.objects.create(url=receiver.url("/ok"))
    Endpoint.objects.create(url=receiver.url("/failing"), failing_since=now)
    Endpoint.objects.create(
        url=receiver.url("/open"), circuit_failures=2, paused_until=now + dt.timedelta(minutes=1)
    )
    Endpoint.objects.create(
        url=receiver.url("/probe"), circuit_failures=1, paused_until=now - dt.timedelta(seconds=1)
    )
    Endpoint.objects.create(url=receiver.url("/off"), is_active=False)
    Endpoint.objects.create(url=receiver.url("/disabled"), disabled_at=now)
    with telemetry():
        django_hooks.send_event("order.paid", {}, owner=None)  # the instruments exist from here
        reading = points()
    state = {
        dict(attrs)["webhook.endpoint.state"]: point.value
        for (name, attrs), point in reading.items()
        if name == "django_hooks.endpoints"
    }
    assert state == {"receiving": 3, "failing": 1, "disabled": 1, "inactive": 1}
    circuits = {
        dict(attrs)["webhook.circuit.state"]: point.value
        for (name, attrs), point in reading.items()
        if name == "django_hooks.circuits"
    }
    assert circuits == {"closed": 2, "open": 1, "half_open": 1}


def test_a_gauge_read_from_another_thread_closes_the_connection_it_opened():
    import threading

    from django.db import connection

    from django_hooks.outbound.otel import endpoint_states

    seen = {}

    def scrape():
        seen["observations"] = endpoint_states(None)
        seen["open"] = connection.connection is not None

    thread = threading.Thread(target=scrape)
    thread.start()
    thread.join()
    assert len(seen["observations"]) == 4 and seen["open"] is False


def test_send_event_inside_a_transaction_keeps_its_span_in_the_callers_trace(spans):
    Endpoint.objects.create(url="http://127.0.0.1:9/x")
    with telemetry(), trace.get_tracer("the-site").start_as_current_span("job") as job:
        with transaction.atomic():
            for n in range(3):
                django_hooks.send_event("order.paid", {"n": n})
    sends = by_name(spans, "send order.paid")
    assert len(sends) == 3 and {s.parent.span_id for s in sends} == {job.get_span_context().span_id}


# -- off, absent, and the Prometheus set-up (subprocesses: a clean interpreter each) -------------

SETUP = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ.pop("DATABASE_URL", None)
{block}
import django
from django.conf import settings
django.setup()
# A file: a Prometheus scrape reads the gauges on its own thread, with its own connection.
settings.DATABASES["default"]["NAME"] = os.environ["HOOKS_TEST_DB"]
settings.DJANGO_HOOKS = {{"ALLOWED_NETWORKS": ["127.0.0.0/8"], "RETRY_SCHEDULE": [60], "TIMEOUT": 2,
                          "TELEMETRY": {telemetry}}}
from django_hooks.conf import hooks_settings
hooks_settings.reload()  # ready() read the settings above already
from django.core.management import call_command
call_command("migrate", verbosity=0)
import django_hooks
from django_hooks.models import Endpoint
from django_hooks.outbound import wakeups
from django_hooks.outbound.engine import Drain
Endpoint.objects.create(url="http://127.0.0.1:9/closed")
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOOKS_TEST_DB": os.path.join(folder, "db.sqlite3"),
        }
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.mark.parametrize("absent", [False, True], ids=["installed", "absent"])
def test_off_nothing_from_opentelemetry_is_imported_and_sending_works(absent):
    block = "sys.modules['opentelemetry'] = None  # as if not installed" if absent else ""
    code = SETUP.format(block=block, telemetry=False) + textwrap.dedent("""
        with wakeups.paused():
            django_hooks.send_event("order.paid", {"id": 1})
        print(Drain().run().summary()["attempted"])
        print("django_hooks.outbound.otel" in sys.modules)
    """)
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    # (redis-py imports opentelemetry itself when it is installed: django-hooks' module is the
    # one that must stay unloaded.)
    assert done.stdout.split() == ["1", "False"]


def test_on_without_opentelemetry_the_error_names_the_extra():
    code = SETUP.format(
        block="sys.modules['opentelemetry'] = None", telemetry=True
    ) + textwrap.dedent("""
        from django_hooks.exceptions import MissingDependency
        from django_hooks.checks import check_settings
        print([m.id for m in check_settings() if m.id == "django_hooks.E017"])
        try:
            django_hooks.send_event("order.paid", {})
        except MissingDependency as exc:
            print(exc)
    """)
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert "['django_hooks.E017']" in done.stdout
    assert 'pip install "django-hooks[otel]"' in done.stdout


def test_the_documented_prometheus_set_up_serves_the_metrics():
    """docs/telemetry.md's Prometheus block, run as written, then scraped over HTTP."""
    page = (ROOT / "docs" / "telemetry.md").read_text()
    block = page.split("```python\n# prometheus\n", 1)[1].split("```", 1)[0]
    port = free_port()
    block = block.replace("start_http_server(9464", f"start_http_server({port}")
    code = SETUP.format(block=block, telemetry=True) + textwrap.dedent(f"""
        with wakeups.paused():
            django_hooks.send_event("order.paid", {{"id": 1}})
        Drain().run()
        import urllib.request
        print(urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
    """)
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    scraped = done.stdout

    def sample(name, label=""):
        """A sample's value; the exporter adds its otel_scope_* labels beside ours."""
        found = re.search(rf"^{name}\{{[^}}]*{label}[^}}]*\}} (\S+)$", scraped, re.M)
        assert found, f"{name} {label} not served:\n{scraped}"
        return float(found[1])

    assert sample("django_hooks_attempts_total", 'webhook_outcome="retrying"') == 1
    assert sample("django_hooks_queue_lag_seconds_count") == 1
    assert sample("django_hooks_endpoints", 'webhook_endpoint_state="failing"') == 1
    assert sample("django_hooks_circuits", 'webhook_circuit_state="open"') == 1


def test_docs_name_every_metric():
    page = (ROOT / "docs" / "telemetry.md").read_text()
    for name in (
        "django_hooks.deliveries",
        "django_hooks.attempts",
        "django_hooks.delivery.duration",
        "django_hooks.queue.lag",
        "django_hooks.endpoints",
        "django_hooks.circuits",
    ):
        assert f"`{name}`" in page
