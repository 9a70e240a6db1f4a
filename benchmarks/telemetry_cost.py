"""What TELEMETRY costs on the request path: ``send_event`` with telemetry off, on without an
SDK (OpenTelemetry's no-op tracer), and on with the SDK recording every span, in one run.

    python benchmarks/telemetry_cost.py [--calls 500] [--repeats 15] [--max-seconds 120]

SQLite in memory, one subscribed endpoint, wake-ups paused (``wakeups.paused``): only
``send_event``'s own work is timed (its event and delivery inserts, its commit), not Redis. Each
call is its own transaction, as in a request; the tables are emptied before each run, so every
run inserts into tables of the same size. Runs alternate between "off" and the case measured
against it, so drift on a noisy machine hits both alike; each figure is the median per call over
``--repeats`` runs, each ratio the median of the ratios of runs made side by side. The SDK case
comes second: OpenTelemetry's global provider can be set only once per process. Bounded: it
stops after ``--max-seconds`` whatever it reached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django_hooks.models import Endpoint

    Endpoint.objects.create(url="http://127.0.0.1:9/hook", event_types=["order.*"])


def timed(calls: int, telemetry: bool) -> float:
    """Seconds per ``send_event`` call over ``calls`` calls."""
    import gc

    from django.test import override_settings

    import django_hooks
    from django_hooks.models import Event
    from django_hooks.outbound import wakeups

    Event.objects.all().delete()
    gc.collect()

    data = {"id": 42, "total": "9.90", "items": [{"sku": "A-1", "qty": 2}]}
    with (
        override_settings(
            DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"], "TELEMETRY": telemetry}
        ),
        wakeups.paused(),
    ):
        django_hooks.send_event("order.paid", data)  # warm: caches, compiled SQL, instruments
        started = time.perf_counter()
        for _ in range(calls):
            django_hooks.send_event("order.paid", data)
        return (time.perf_counter() - started) / calls


def compare(
    name: str, calls: int, repeats: int, deadline: float
) -> tuple[list[float], list[float]]:
    off, on = [], []
    for _ in range(repeats):
        if time.monotonic() > deadline:
            break
        off.append(timed(calls, False))
        on.append(timed(calls, True))
    return off, on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds
    setup()

    rows = []
    off, noop = compare("no SDK", args.calls, args.repeats, deadline)
    rows.append(("TELEMETRY off", off, None))
    rows.append(("on, no SDK configured (no-op tracer)", noop, off))

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)
    off2, sdk = compare("SDK", args.calls, args.repeats, deadline)
    rows.append(("TELEMETRY off (second phase)", off2, None))
    rows.append(("on, SDK recording every span (batch processor)", sdk, off2))
    provider.shutdown()

    print(f"send_event, {args.calls} calls per run, medians of {len(off)} and {len(off2)} runs")
    print(f"{'case':<50} {'per call':>10} {'ratio':>7}")
    for label, runs, against in rows:
        per_call = statistics.median(runs) * 1000 if runs else float("nan")
        ratio = (
            "1.00"
            if against is None
            else (f"{statistics.median(a / b for a, b in zip(runs, against, strict=False)):.2f}")
        )
        print(f"{label:<50} {per_call:>8.3f}ms {ratio:>7}")


if __name__ == "__main__":
    main()
