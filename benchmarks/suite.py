"""The benchmarks for one database, each measured beside its reference in the same process.

Run by ``benchmarks/run.py`` (``make bench``), once per database, with ``REDIS_URL`` and either
``BENCH_SQLITE`` or ``BENCH_DATABASE_URL`` set; writes its figures as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
import urllib3  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

import django_hooks  # noqa: E402
from benchmarks.benchapp.models import Order  # noqa: E402
from benchmarks.constants import BENCH_SECRET  # noqa: E402
from django_hooks.core.payload import encode_body  # noqa: E402
from django_hooks.core.signing import Signer  # noqa: E402
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, InboundWebhook  # noqa: E402
from django_hooks.outbound.tasks import get_queue  # noqa: E402
from django_hooks.testing import free_port, wait_for_port  # noqa: E402

PYTHON = sys.executable


# -- processes -----------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def fast_receiver() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "benchmarks" / "receiver.py"), "--port", str(port),
         "--secret", BENCH_SECRET, "--sample", "50"],
        stdout=subprocess.DEVNULL, env=child_env(),
    )  # fmt: skip
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop([process])


def receiver_stats(base: str) -> dict[str, int]:
    return requests.get(f"{base}/stats", timeout=5).json()  # type: ignore[no-any-return]


WORKER_KINDS = {
    # name: (processes, command)
    "simple": ["rqworker", "{queue}", "--worker-class", "rq.worker.SimpleWorker"],
    "fork": ["rqworker", "{queue}", "--worker-class", "rq.worker.Worker"],
    "pool": ["rqworker-pool", "{queue}", "--num-workers", "{count}", "--worker-class",
             "rq.worker.SimpleWorker"],
}  # fmt: skip


@contextlib.contextmanager
def workers(count: int, kind: str = "simple") -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` real workers on the delivery queue, ready before this yields.

    ``simple`` and ``fork`` start one process per worker; ``pool`` one ``rqworker-pool``
    process that runs ``count`` workers.
    """
    from rq import Worker

    queue = get_queue()
    before = len(Worker.all(connection=queue.connection))
    args = [a.format(queue=queue.name, count=count) for a in WORKER_KINDS[kind]]
    processes = [
        subprocess.Popen(
            [PYTHON, "-m", "django", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),
        )  # fmt: skip
        for _ in range(1 if kind == "pool" else count)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=queue.connection)) < before + count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"{kind} workers did not start")
            time.sleep(0.05)
        yield processes
    finally:
        stop(processes)
        # A pool's or a killed worker's registration may outlive it; the next run counts anew.
        for worker in Worker.all(connection=queue.connection):
            with contextlib.suppress(Exception):
                worker.register_death()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no RSS for {pid}")


# -- data ----------------------------------------------------------------------------------------


def reset_data() -> None:
    for model in (DeliveryAttempt, Delivery, Event, Endpoint, InboundWebhook, Order):
        model.objects.all().delete()
    get_queue().connection.flushdb()


def event_data(n: int) -> dict[str, Any]:
    """About 1 KB of JSON, like a typical order webhook."""
    return {
        "id": n,
        "reference": f"ORD-{n:08d}",
        "total": "129.90",
        "currency": "EUR",
        "customer": {
            "id": n % 977,
            "email": f"customer{n % 977}@example.com",
            "name": "A Customer",
        },
        "lines": [
            {
                "sku": f"SKU-{i:04d}",
                "name": f"Product number {i}",
                "quantity": i + 1,
                "unit_price": "12.99",
            }
            for i in range(8)
        ],  # fmt: skip
    }


def make_endpoints(base: str, count: int, event_types: list[str], prefix: str = "e") -> list[int]:
    endpoints = []
    for i in range(count):
        endpoint = Endpoint(url=f"{base}/{prefix}{i}", event_types=event_types)
        endpoint.secret = BENCH_SECRET
        types = sorted(set(event_types))
        endpoint.event_types_match = "" if not types or "*" in types else f"|{'|'.join(types)}|"
        endpoints.append(endpoint)
    return [e.pk for e in Endpoint.objects.bulk_create(endpoints, batch_size=500)]


def wait_until_delivered(base: str, expected: int, timeout: float = 600) -> float:
    """Seconds until the receiver has ``expected`` unique webhooks and none is pending."""
    deadline = time.monotonic() + timeout
    while receiver_stats(base)["unique"] < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {receiver_stats(base)['unique']} of {expected} arrived")
        time.sleep(0.01)
    while Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("deliveries still pending")
        time.sleep(0.01)
    return time.perf_counter()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


# -- 1. end-to-end throughput --------------------------------------------------------------------


def signed_requests(count: int, endpoints: int) -> list[tuple[int, bytes, dict[str, str]]]:
    signer = Signer([BENCH_SECRET])
    out = []
    created = timezone.now()
    for n in range(count):
        body = encode_body("order.paid", created, event_data(n))
        msg_id = f"msg_ref{n:010d}"
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signer.header(msg_id, timestamp, body),
        }
        for e in range(endpoints):
            out.append((e, body, headers))
    return out


def reference_requests(base: str, reqs: list[tuple[int, bytes, dict[str, str]]]) -> float:
    session = requests.Session()
    session.trust_env = False
    started = time.perf_counter()
    for e, body, headers in reqs:
        session.post(f"{base}/r{e}", data=body, headers=headers, timeout=5).raise_for_status()
    elapsed = time.perf_counter() - started
    session.close()
    return len(reqs) / elapsed


def reference_urllib3(base: str, reqs: list[tuple[int, bytes, dict[str, str]]]) -> float:
    pool = urllib3.PoolManager(maxsize=1)
    started = time.perf_counter()
    for e, body, headers in reqs:
        response = pool.request("POST", f"{base}/u{e}", body=body, headers=headers, timeout=5)
        assert response.status == 200
    elapsed = time.perf_counter() - started
    pool.clear()
    return len(reqs) / elapsed


def end_to_end(
    base: str, events: int, endpoints: int, worker_count: int, kind: str = "simple"
) -> dict[str, Any]:
    reset_data()
    make_endpoints(base, endpoints, ["order.*"])
    requests.post(f"{base}/reset", timeout=5)
    started: list[float] = []
    with workers(worker_count, kind):
        with transaction.atomic():
            transaction.on_commit(lambda: started.append(time.perf_counter()))
            for n in range(events):
                django_hooks.send_event("order.paid", event_data(n))
        finished = wait_until_delivered(base, events * endpoints)
    stats = receiver_stats(base)
    succeeded = Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count()
    return {
        "per_second": events * endpoints / (finished - started[0]),
        "succeeded": succeeded,
        "duplicates": stats["duplicates"],
        "verified_sample": stats["verified"],
        "bad_signatures": stats["bad_signatures"],
    }


# The recommended worker (SimpleWorker) with 1 and 2 processes, run `repeat` times; the other
# ways of running RQ once each, to show why it is the recommended one.
END_TO_END_RUNS = [("workers_1", 1, "simple"), ("workers_2", 2, "simple")]
WORKER_CLASS_RUNS = [("fork_1", 1, "fork"), ("pool_2", 2, "pool")]


def bench_end_to_end(
    base: str, repeat: int, events: int, endpoints: int, compare_workers: bool
) -> dict[str, Any]:
    reqs = signed_requests(events, endpoints)
    runs: dict[str, list[float]] = {"requests": [], "urllib3": []}
    checks: dict[str, Any] = {}

    def run(name: str, count: int, kind: str) -> None:
        result = end_to_end(base, events, endpoints, count, kind)
        runs.setdefault(name, []).append(result.pop("per_second"))
        for key, value in result.items():
            checks.setdefault(name, {}).setdefault(key, []).append(value)

    for _ in range(repeat):
        requests.post(f"{base}/reset", timeout=5)
        runs["requests"].append(reference_requests(base, reqs))
        runs["urllib3"].append(reference_urllib3(base, reqs))
        for name, count, kind in END_TO_END_RUNS:
            run(name, count, kind)
    if compare_workers:
        # RQ's forking worker is an order of magnitude slower: a tenth of the events show it.
        for name, count, kind in WORKER_CLASS_RUNS:
            result = end_to_end(base, max(1, events // 10), endpoints, count, kind)
            runs.setdefault(name, []).append(result.pop("per_second"))
            for key, value in result.items():
                checks.setdefault(name, {}).setdefault(key, []).append(value)
    return {
        "events": events,
        "endpoints": endpoints,
        "runs": {name: summary(values) for name, values in runs.items()},
        "checks": checks,
    }


# -- 2. request-path cost ------------------------------------------------------------------------


def count_queries(function: Callable[[], None]) -> int:
    # Django's query log keeps the last 9,000 queries: once full, a capture's slice is empty.
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        function()
    return len(queries.captured_queries)


def per_call(function: Callable[[int], None], calls: int) -> tuple[float, int]:
    """Median seconds per call (timed without query logging) and the queries of one more call."""
    times = []
    for n in range(calls):
        started = time.perf_counter()
        function(n)
        times.append(time.perf_counter() - started)
    return statistics.median(times), count_queries(lambda: function(calls))


def bench_request_path(base: str, repeat: int) -> dict[str, Any]:
    reset_data()
    results: dict[str, Any] = {}

    def plain_insert(n: int) -> None:
        with transaction.atomic():
            Order.objects.create(reference=f"ORD-{n}", total="9.90")

    for fanout in (1, 10, 100, 1000):
        event_type = f"fanout{fanout}.paid"
        make_endpoints(base, fanout, [event_type], prefix=f"p{fanout}-")
        calls = 200 if fanout <= 10 else 50 if fanout == 100 else 20
        ratios, times, reference_times, query_counts = [], [], [], []
        for _ in range(repeat):
            reference, _ = per_call(plain_insert, calls)

            def send(n: int, event_type: str = event_type) -> None:
                with transaction.atomic():
                    django_hooks.send_event(event_type, event_data(n))

            elapsed, query_count = per_call(send, calls)
            get_queue().connection.flushdb()
            ratios.append(elapsed / reference)
            times.append(elapsed)
            reference_times.append(reference)
            query_counts.append(query_count)
        results[str(fanout)] = {
            "ms_per_call": summary([t * 1000 for t in times]),
            "plain_insert_ms": summary([t * 1000 for t in reference_times]),
            "ratio": summary(ratios),
            "queries_per_call": max(query_counts),
        }
    results["plain_insert_queries"] = count_queries(lambda: plain_insert(0))
    return results


# -- 3. fan-out to 10,000 endpoints --------------------------------------------------------------


def bench_fanout(base: str, endpoints: int) -> dict[str, Any]:
    reset_data()
    make_endpoints(base, endpoints, ["fanout.big"], prefix="f")
    requests.post(f"{base}/reset", timeout=5)
    with workers(2):
        started = time.perf_counter()
        with transaction.atomic():
            django_hooks.send_event("fanout.big", event_data(1))
        recorded = time.perf_counter()
        finished = wait_until_delivered(base, endpoints)
    return {
        "endpoints": endpoints,
        "send_event_s": recorded - started,
        "delivered_s": finished - recorded,
        "per_second": endpoints / (finished - recorded),
    }


# -- 4. inbound ----------------------------------------------------------------------------------


def bench_inbound(repeat: int, count: int) -> dict[str, Any]:
    reset_data()
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "benchmarks.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, env=child_env(),
    )  # fmt: skip
    signer = Signer([BENCH_SECRET])
    body = encode_body("order.paid", timezone.now(), event_data(1))
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)
    runs: dict[str, list[float]] = {"verified": [], "plain": []}
    try:
        wait_for_port(port, server)
        for round_ in range(repeat):
            for name in ("plain", "verified") if round_ % 2 else ("verified", "plain"):
                calls = []
                for n in range(count):
                    msg_id = f"msg_in{name}{round_}x{n:08d}"
                    timestamp = int(time.time())
                    calls.append({
                        "content-type": "application/json",
                        "webhook-id": msg_id,
                        "webhook-timestamp": str(timestamp),
                        "webhook-signature": signer.header(msg_id, timestamp, body),
                    })  # fmt: skip
                started = time.perf_counter()
                for headers in calls:
                    response = pool.request("POST", f"/in/{name}/", body=body, headers=headers)
                    assert response.status == 204, (name, response.status, response.data[:200])
                runs[name].append(count / (time.perf_counter() - started))
    finally:
        pool.close()
        stop([server])
    stored = InboundWebhook.objects.count()
    ratios = [v / p for v, p in zip(runs["verified"], runs["plain"], strict=True)]
    return {
        "requests": count,
        "runs": {name: summary(values) for name, values in runs.items()},
        "ratio": summary(ratios),
        "stored": stored,
    }


# -- 5. worker memory ----------------------------------------------------------------------------


def bench_memory(base: str, checkpoints: list[int], endpoints: int) -> dict[str, Any]:
    reset_data()
    make_endpoints(base, endpoints, ["order.*"], prefix="m")
    requests.post(f"{base}/reset", timeout=5)
    samples: dict[str, int] = {}
    total_events = checkpoints[-1] // endpoints
    with workers(1) as (worker,):
        sent = 0
        pending_checkpoints = list(checkpoints)
        started = time.perf_counter()
        while pending_checkpoints:
            # Keep the queue fed in chunks, never far ahead of the worker.
            arrived = receiver_stats(base)["unique"]
            if sent < total_events and sent * endpoints - arrived < 5000:
                with transaction.atomic():
                    for n in range(sent, min(sent + 500, total_events)):
                        django_hooks.send_event("order.paid", event_data(n))
                sent = min(sent + 500, total_events)
                continue
            if arrived >= pending_checkpoints[0]:
                samples[str(pending_checkpoints.pop(0))] = rss_kib(worker.pid)
                continue
            if time.perf_counter() - started > 900:
                raise TimeoutError("memory benchmark took too long")
            time.sleep(0.05)
    values = [samples[str(c)] for c in checkpoints]
    return {
        "rss_kib": samples,
        "growth_mib": (values[-1] - values[0]) / 1024,
        "seconds": time.perf_counter() - started,
    }


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", default="e2e,request,fanout,inbound,memory")
    args = parser.parse_args()
    only = set(args.only.split(","))
    call_command("migrate", verbosity=0, run_syncdb=True)
    results: dict[str, Any] = {"database": connection.vendor}
    with connection.cursor() as cursor:
        cursor.execute(
            "select sqlite_version()" if connection.vendor == "sqlite" else "show server_version"
        )
        results["database_version"] = cursor.fetchone()[0]
    quick = args.quick
    out = Path(args.out)
    with fast_receiver() as base:
        if "e2e" in only:
            results["end_to_end"] = bench_end_to_end(
                base, args.repeat, events=200 if quick else 2000, endpoints=5,
                compare_workers=connection.vendor == "sqlite",
            )  # fmt: skip
        if "request" in only:
            results["request_path"] = bench_request_path(base, args.repeat)
        if "fanout" in only:
            results["fanout"] = bench_fanout(base, 1000 if quick else 10_000)
        if "inbound" in only:
            results["inbound"] = bench_inbound(args.repeat, 300 if quick else 2000)
        if "memory" in only:
            checkpoints = [2000, 10_000] if quick else [10_000, 100_000]
            results["memory"] = bench_memory(base, checkpoints, endpoints=5)
            out.write_text(json.dumps(results, indent=2))
    reset_data()
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
