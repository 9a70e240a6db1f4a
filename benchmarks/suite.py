"""The benchmarks for one database, each measured beside its reference in the same process.

Run by ``benchmarks/run.py`` (``make bench``), once per database, with ``REDIS_URL`` and either
``BENCH_SQLITE`` or ``BENCH_DATABASE_URL`` set; writes its figures as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
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
from django_hooks.conf import hooks_settings  # noqa: E402
from django_hooks.core.payload import encode_body  # noqa: E402
from django_hooks.core.signing import Signer  # noqa: E402
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, InboundWebhook  # noqa: E402
from django_hooks.outbound.wakeups import get_queue  # noqa: E402
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
def receiver(delay_ms: float = 0) -> Iterator[str]:
    """A receiver answering every POST after ``delay_ms`` (paths under ``/hang`` never)."""
    port = free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            str(ROOT / "benchmarks" / "receiver.py"),
            "--port",
            str(port),
            "--secret",
            BENCH_SECRET,
            "--sample",
            "50",
            "--delay",
            str(delay_ms),
        ],
        stdout=subprocess.DEVNULL,
        env=child_env(),
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop([process])


def fast_receiver() -> contextlib.AbstractContextManager[str]:
    return receiver(0)


def receiver_stats(base: str, paths: bool = False) -> dict[str, Any]:
    url = f"{base}/stats?paths=1" if paths else f"{base}/stats"
    return requests.get(url, timeout=5).json()  # type: ignore[no-any-return]


def reset_receiver(base: str) -> None:
    requests.post(f"{base}/reset", timeout=5).raise_for_status()


WORKER_KINDS = {
    # name: (processes, command)
    "simple": [
        "rqworker",
        "{queue}",
        "--with-scheduler",
        "--worker-class",
        "rq.worker.SimpleWorker",
    ],
    "fork": ["rqworker", "{queue}", "--with-scheduler", "--worker-class", "rq.worker.Worker"],
    "pool": [
        "rqworker-pool",
        "{queue}",
        "--num-workers",
        "{count}",
        "--worker-class",
        "rq.worker.SimpleWorker",
    ],
}


#: Every worker's stderr goes to a file here; ``worker_log_problems`` reads them after a run.
WORKER_LOGS = Path(tempfile.gettempdir()) / f"django-hooks-bench-workers-{os.getpid()}"


def start_worker(kind: str = "simple", count: int = 1) -> subprocess.Popen[bytes]:
    """One worker process (``pool``: one process running ``count`` workers), not waited for."""
    args = [a.format(queue=get_queue().name, count=count) for a in WORKER_KINDS[kind]]
    WORKER_LOGS.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=WORKER_LOGS, prefix=f"{kind}-", suffix=".log", delete=False
    ) as log:
        return subprocess.Popen(
            [PYTHON, "-m", "django", *args],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=child_env(),
        )


#: Lines of Django's system check for the benchmark settings (ALLOWED_NETWORKS), not problems.
CHECK_LINES = ("System check identified", "WARNINGS:", "?: (django_hooks.W001)", "HINT:")


def worker_log_problems() -> list[str]:
    """Tracebacks, errors and warnings the workers wrote to stderr in this run."""
    problems = []
    for path in sorted(WORKER_LOGS.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith(CHECK_LINES):
                problems.append(f"{path}: {line}"[:400])
    return problems


@contextlib.contextmanager
def workers(count: int, kind: str = "simple") -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` real workers on the delivery queue, ready before this yields.

    ``simple`` and ``fork`` start one process per worker; ``pool`` one ``rqworker-pool``
    process that runs ``count`` workers.
    """
    from rq import Worker

    queue = get_queue()
    before = len(Worker.all(connection=queue.connection))
    processes = [start_worker(kind, count) for _ in range(1 if kind == "pool" else count)]
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


def drains_per_worker() -> list[int]:
    """Jobs each live worker has finished or is running (a worker with 0 took no drain)."""
    from rq import Worker

    counts = []
    for worker in Worker.all(connection=get_queue().connection):
        counts.append(
            worker.successful_job_count
            + worker.failed_job_count
            + (1 if worker.get_current_job_id() else 0)
        )
    return sorted(counts, reverse=True)


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
        ],
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


def wait_until_delivered(
    base: str, expected: int, timeout: float = 600, *, arrived: bool = False
) -> float:
    """``perf_counter()`` once the receiver has ``expected`` unique webhooks and none is pending
    (``arrived``: the moment the last one arrived, still waiting for none to be pending)."""
    deadline = time.monotonic() + timeout
    while receiver_stats(base)["unique"] < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {receiver_stats(base)['unique']} of {expected} arrived")
        time.sleep(0.01)
    arrived_at = time.perf_counter()
    while Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("deliveries still pending")
        time.sleep(0.01)
    return arrived_at if arrived else time.perf_counter()


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
        [
            PYTHON,
            "-m",
            "gunicorn",
            "benchmarks.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        env=child_env(),
    )
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
                    calls.append(
                        {
                            "content-type": "application/json",
                            "webhook-id": msg_id,
                            "webhook-timestamp": str(timestamp),
                            "webhook-signature": signer.header(msg_id, timestamp, body),
                        }
                    )
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


# -- 6. business transactions and late receivers ---------------------------------------------


def business_transaction(n: int, webhooks: bool = True) -> None:
    """What a view saving an order does: one order and (``webhooks``) its event, one commit."""
    with transaction.atomic():
        Order.objects.create(reference=f"ORD-{n:08d}", total="129.90")
        if webhooks:
            django_hooks.send_event("order.paid", event_data(n))


def fire_transactions(count: int) -> float:
    """Commit ``count`` business transactions one after the other; the first commit's time."""
    first: list[float] = []
    for n in range(count):
        with transaction.atomic():
            if not first:  # runs before send_event's own on_commit: the time of the commit
                transaction.on_commit(lambda: first.append(time.perf_counter()))
            business_transaction(n)
    return first[0]


def reference_threads(
    base: str, reqs: list[tuple[int, bytes, dict[str, str]]], threads: int = 64
) -> float:
    """POSTs/s of ``threads`` threads, each with its own ``requests.Session`` (trust_env off)."""
    work: queue.SimpleQueue[tuple[int, bytes, dict[str, str]]] = queue.SimpleQueue()
    for request in reqs:
        work.put(request)
    errors: list[BaseException] = []

    def run() -> None:
        session = requests.Session()
        session.trust_env = False
        try:
            while True:
                try:
                    e, body, headers = work.get_nowait()
                except queue.Empty:
                    return
                session.post(f"{base}/t{e}", data=body, headers=headers, timeout=30)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            session.close()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=300)
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return len(reqs) / elapsed


def hooks_run(
    base: str, transactions: int, endpoints: int, worker_count: int = 2
) -> dict[str, Any]:
    """``transactions`` business transactions, one event each to ``endpoints`` endpoints, with
    workers already running: seconds from the first commit until the last webhook arrived."""
    reset_data()
    make_endpoints(base, endpoints, ["order.*"])
    reset_receiver(base)
    with workers(worker_count):
        started = fire_transactions(transactions)
        finished = wait_until_delivered(base, transactions * endpoints, timeout=300, arrived=True)
    stats = receiver_stats(base)
    return {
        "per_second": transactions * endpoints / (finished - started),
        "seconds": finished - started,
        "succeeded": Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count(),
        "duplicates": stats["duplicates"],
        "bad_signatures": stats["bad_signatures"],
    }


def compare_runs(
    repeat: int, reference: Callable[[], float], hooks: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The reference's and django-hooks' rates, alternated ``repeat`` times, and their ratio."""
    refs: list[float] = []
    rates: list[float] = []
    checks: dict[str, list[Any]] = {}
    for _ in range(repeat):
        refs.append(reference())
        result = hooks()
        rates.append(result.pop("per_second"))
        for key, value in result.items():
            checks.setdefault(key, []).append(value)
    return {
        "reference": summary(refs),
        "hooks": summary(rates),
        "ratio": summary([r / ref for r, ref in zip(rates, refs, strict=True)]),
        "checks": checks,
    }


def bench_slow(repeat: int, transactions: int, endpoints: int, delays: list[int]) -> dict[str, Any]:
    """Receivers answering late: 2 workers against 64 threads with a Session each (runs past
    the first delay at most twice: at 500 ms each takes ~15 s)."""
    results: dict[str, Any] = {"transactions": transactions, "endpoints": endpoints}
    reqs = signed_requests(transactions, endpoints)
    for delay in delays:
        repeat = repeat if delay == delays[0] else min(repeat, 2)
        with receiver(delay) as base:

            def reference(base: str = base) -> float:
                reset_receiver(base)
                return reference_threads(base, reqs)

            results[str(delay)] = compare_runs(
                repeat, reference, lambda base=base: hooks_run(base, transactions, endpoints)
            )
    return results


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_latency(rate: int, seconds: float, endpoints: int, delay: int = 100) -> dict[str, Any]:
    """``rate`` business transactions a second for ``seconds``, each one event to ``endpoints``:
    how long from ``event.created_at`` until the webhook arrived at the receiver."""
    transactions = int(rate * seconds)
    with receiver(delay) as base:
        reset_data()
        make_endpoints(base, endpoints, ["order.*"])
        reset_receiver(base)
        with workers(2):
            started = time.perf_counter()
            for n in range(transactions):
                pause = started + n / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                business_transaction(n)
            fired = time.perf_counter() - started
            wait_until_delivered(base, transactions * endpoints, timeout=300)
        arrivals = requests.get(f"{base}/arrivals", timeout=30).json()
        stats = receiver_stats(base)
    created = {pk: at.timestamp() for pk, at in Event.objects.values_list("id", "created_at")}
    latencies = [arrived - created[msg_id] for _, msg_id, arrived in arrivals]
    return {
        "transactions": transactions,
        "endpoints": endpoints,
        "delay_ms": delay,
        "offered_per_second": transactions * endpoints / fired,
        "arrived": len(latencies),
        "duplicates": stats["duplicates"],
        "latency_s": {f"p{p}": percentile(latencies, p) for p in (50, 95, 99, 100)},
    }


def wait_for_paths(base: str, paths: list[str], each: int, timeout: float = 300) -> float:
    """``perf_counter()`` once every one of ``paths`` has ``each`` unique webhooks."""
    deadline = time.monotonic() + timeout
    while True:
        counts = receiver_stats(base, paths=True)["paths"]
        if all(counts.get(path, 0) >= each for path in paths):
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"healthy endpoints got {counts}, wanted {each} each")
        time.sleep(0.01)


def noisy_run(base: str, transactions: int, healthy: int, hanging: bool) -> dict[str, Any]:
    reset_data()
    make_endpoints(base, healthy, ["order.*"], prefix="e")
    make_endpoints(base, 1, ["order.*"], prefix="hang" if hanging else "x")
    reset_receiver(base)
    with workers(2):
        started = fire_transactions(transactions)
        finished = wait_for_paths(base, [f"/e{i}" for i in range(healthy)], transactions)
        stats = receiver_stats(base)
        # Let the workers stop: no further attempts at the hanging endpoint.
        Endpoint.objects.filter(url__contains="/hang").update(is_active=False)
    return {
        "seconds": finished - started,
        "held_at_hanging_endpoint": stats["held"],
        "duplicates": stats["duplicates"],
    }


def bench_noisy(repeat: int, transactions: int, endpoints: int, delay: int = 100) -> dict[str, Any]:
    """One endpoint never answering (held until TIMEOUT) beside healthy ones answering after
    ``delay`` ms: the healthy endpoints' time, against the same run with all of them healthy."""
    healthy = endpoints - 1
    runs: dict[str, list[dict[str, Any]]] = {"all_healthy": [], "one_hanging": []}
    with receiver(delay) as base:
        for _ in range(repeat):
            runs["all_healthy"].append(noisy_run(base, transactions, healthy, hanging=False))
            runs["one_hanging"].append(noisy_run(base, transactions, healthy, hanging=True))
    seconds = {name: [r["seconds"] for r in values] for name, values in runs.items()}
    return {
        "transactions": transactions,
        "endpoints": endpoints,
        "delay_ms": delay,
        "timeout_s": float(hooks_settings.TIMEOUT),
        "seconds": {name: summary(values) for name, values in seconds.items()},
        "ratio": summary(
            [h / a for h, a in zip(seconds["one_hanging"], seconds["all_healthy"], strict=True)]
        ),
        "held_at_hanging_endpoint": [r["held_at_hanging_endpoint"] for r in runs["one_hanging"]],
        "duplicates": sum(r["duplicates"] for values in runs.values() for r in values),
    }


def bench_e2e_tx(base: str, repeat: int, transactions: int, endpoints: int) -> dict[str, Any]:
    """Instant receiver, firing included: from before the first transaction to the last arrival,
    against a bare sequential ``requests.Session`` loop over the same signed bodies."""
    reqs = signed_requests(transactions, endpoints)

    def reference() -> float:
        reset_receiver(base)
        return reference_requests(base, reqs)

    def hooks() -> dict[str, Any]:
        reset_data()
        make_endpoints(base, endpoints, ["order.*"])
        reset_receiver(base)
        with workers(2):
            started = time.perf_counter()
            for n in range(transactions):
                business_transaction(n)
            fired = time.perf_counter() - started
            finished = wait_until_delivered(base, transactions * endpoints, arrived=True)
        return {
            "per_second": transactions * endpoints / (finished - started),
            "firing_s": fired,
            "duplicates": receiver_stats(base)["duplicates"],
        }

    return {
        "transactions": transactions,
        "endpoints": endpoints,
        **compare_runs(repeat, reference, hooks),
    }


def redis_calls() -> Counter[str]:
    """Commands the Redis has run so far, per command (INFO itself left out)."""
    stats = get_queue().connection.info("commandstats")
    return Counter(
        {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items() if k != "cmdstat_info"}
    )


@contextlib.contextmanager
def redis_round_trips() -> Iterator[list[int]]:
    """Counts this process's writes to Redis: one per command, or per pipeline."""
    import redis.connection

    sent = [0]
    original = redis.connection.Connection.send_packed_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return original(self, *args, **kwargs)

    redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        redis.connection.Connection.send_packed_command = original  # type: ignore[method-assign]


def timed_transactions(count: int, webhooks: bool) -> tuple[float, Counter[str], int]:
    """Seconds for ``count`` business transactions, the Redis commands they ran, and the
    round trips to Redis they made."""
    calls = redis_calls()
    with redis_round_trips() as trips:
        started = time.perf_counter()
        for n in range(count):
            business_transaction(n, webhooks)
        elapsed = time.perf_counter() - started
        round_trips = trips[0]
    return elapsed, redis_calls() - calls, round_trips


def bench_request_tx(base: str, repeat: int, transactions: int, endpoints: int) -> dict[str, Any]:
    """The request path alone (no workers): transactions with an event against the same
    transactions without webhooks; Redis commands per commit and queries per transaction."""
    reset_data()
    make_endpoints(base, endpoints, ["order.*"])
    redis = get_queue().connection
    times: dict[str, list[float]] = {"plain": [], "hooks": []}
    commands: Counter[str] = Counter()
    round_trips = 0
    for round_ in range(repeat):
        for name in ("plain", "hooks") if round_ % 2 else ("hooks", "plain"):
            redis.flushdb()  # no drain waiting: the first commit enqueues one
            elapsed, calls, trips = timed_transactions(transactions, webhooks=name == "hooks")
            times[name].append(elapsed / transactions * 1000)
            if name == "hooks":
                commands += calls
                round_trips += trips
    redis.flushdb()
    _, first_calls, first_trips = timed_transactions(1, webhooks=True)  # enqueues a drain
    queries = count_queries(lambda: business_transaction(0))
    plain_queries = count_queries(lambda: business_transaction(0, webhooks=False))
    redis.flushdb()
    commits = transactions * repeat
    return {
        "transactions": transactions,
        "endpoints": endpoints,
        "ms_per_transaction": summary(times["hooks"]),
        "plain_ms_per_transaction": summary(times["plain"]),
        "ratio": summary([h / p for h, p in zip(times["hooks"], times["plain"], strict=True)]),
        "redis_commands_per_commit": sum(commands.values()) / commits,
        "redis_commands": {k: v / commits for k, v in sorted(commands.items())},
        "redis_round_trips_per_commit": round_trips / commits,
        "redis_commands_first_commit": dict(first_calls),
        "redis_round_trips_first_commit": first_trips,
        "queries_per_transaction": queries,
        "plain_queries_per_transaction": plain_queries,
    }


# -- 7. a worker killed mid-run ------------------------------------------------------------------


def held_claims() -> dict[Any, set[tuple[int, Any]]]:
    """Pending claimed deliveries per claim token, with their lease."""
    held: dict[Any, set[tuple[int, Any]]] = {}
    rows = Delivery.objects.filter(
        status=Delivery.Status.PENDING, claim_token__isnull=False
    ).values_list("claim_token", "pk", "locked_until")
    for token, pk, locked_until in rows:
        held.setdefault(token, set()).add((pk, locked_until))
    return held


def frozen_claims(victim: subprocess.Popen[bytes], base: str) -> set[int]:
    """SIGSTOP ``victim`` and return the deliveries it holds: the claims that neither change
    nor get renewed while it is frozen, provided the other worker kept delivering meanwhile
    (else the victim froze holding a lock the other one waits for: empty, and resumed)."""
    victim.send_signal(signal.SIGSTOP)
    time.sleep(0.3)
    first, arrived = held_claims(), receiver_stats(base)["unique"]
    time.sleep(1.0)
    second = held_claims()
    if receiver_stats(base)["unique"] == arrived:
        victim.send_signal(signal.SIGCONT)
        return set()
    return {pk for token, rows in first.items() if second.get(token) == rows for pk, _ in rows}


def freeze_when_busy(victim: subprocess.Popen[bytes], base: str, total: int) -> set[int]:
    """Once a fifth has arrived, freeze ``victim`` holding claims (a few tries, 30 s at most)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        arrived = receiver_stats(base)["unique"]
        if arrived >= total:
            break
        if arrived >= total // 5:
            held = frozen_claims(victim, base)
            if held:
                return held
            victim.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    victim.send_signal(signal.SIGSTOP)
    return set()


def wait_all_succeeded(total: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    succeeded = 0
    while time.monotonic() < deadline:
        succeeded = Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count()
        if succeeded >= total:
            break
        time.sleep(0.1)
    return succeeded


def bench_crash(transactions: int, endpoints: int, delay: int = 100) -> dict[str, Any]:
    """2 workers; once the first is busy it is frozen (its claims read), SIGKILLed and replaced
    at once: seconds from the kill until every delivery succeeded, and duplicates."""
    total = transactions * endpoints
    with receiver(delay) as base:
        reset_data()
        make_endpoints(base, endpoints, ["order.*"])
        reset_receiver(base)
        with workers(2) as (victim, _):
            fire_transactions(transactions)
            held = freeze_when_busy(victim, base, total)
            arrived_at_kill = receiver_stats(base)["unique"]
            victim.send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            victim.wait()
            replacement = start_worker()
            try:
                succeeded = wait_all_succeeded(total, timeout=180)
                recovered = time.perf_counter() - killed
            finally:
                stop([replacement])
        stats = receiver_stats(base)
    return {
        "deliveries": total,
        "lease_s": float(hooks_settings.LEASE),
        "arrived_at_kill": arrived_at_kill,
        "held_by_killed_worker": len(held),
        "succeeded": succeeded,
        "seconds_to_all_succeeded": recovered if succeeded >= total else None,
        "duplicates": stats["duplicates"],
        "unique": stats["unique"],
    }


# -- 8. scaling out (PostgreSQL) -----------------------------------------------------------------


def scale_run(
    base: str, count: int, total: int, endpoints: int, one_commit: bool
) -> dict[str, Any]:
    """``total`` deliveries by ``count`` workers, recorded in one commit or one commit per event."""
    events = total // endpoints
    reset_data()
    make_endpoints(base, endpoints, ["order.*"])
    reset_receiver(base)
    with workers(count):
        if one_commit:
            started: list[float] = []
            with transaction.atomic():
                transaction.on_commit(lambda: started.append(time.perf_counter()))
                for n in range(events):
                    django_hooks.send_event("order.paid", event_data(n))
            first_commit = started[0]
        else:
            first_commit = fire_transactions(events)
        finished = wait_until_delivered(base, events * endpoints, arrived=True)
        drains = drains_per_worker()
    return {
        "deliveries": events * endpoints,
        "per_second": events * endpoints / (finished - first_commit),
        "duplicates": receiver_stats(base)["duplicates"],
        "drain_jobs_per_worker": drains,
    }


def bench_scale(deliveries: dict[int, int], endpoints: int, delay: int = 100) -> dict[str, Any]:
    """Late receivers, 1, 2 and 4 worker processes: the deliveries recorded one event per commit
    (``stream``), and the largest count once as a backlog of one commit (``backlog``)."""
    results: dict[str, Any] = {"endpoints": endpoints, "delay_ms": delay}
    with receiver(delay) as base:
        for count, total in deliveries.items():
            results[str(count)] = scale_run(base, count, total, endpoints, one_commit=False)
        most = max(deliveries)
        results["backlog"] = {
            "workers": most,
            **scale_run(base, most, deliveries[most], endpoints, one_commit=True),
        }
    return results


# -- main ----------------------------------------------------------------------------------------


ALL = "e2e,request,fanout,inbound,memory,slow,latency,noisy,e2e_tx,request_tx,crash,scale"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", default=ALL)
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

    def save() -> None:
        results["worker_log_problems"] = worker_log_problems()
        out.write_text(json.dumps(results, indent=2))

    with fast_receiver() as base:
        if "e2e" in only:
            results["end_to_end"] = bench_end_to_end(
                base,
                args.repeat,
                events=200 if quick else 2000,
                endpoints=5,
                compare_workers=connection.vendor == "sqlite",
            )
        if "request" in only:
            results["request_path"] = bench_request_path(base, args.repeat)
        if "fanout" in only:
            results["fanout"] = bench_fanout(base, 1000 if quick else 10_000)
        if "inbound" in only:
            results["inbound"] = bench_inbound(args.repeat, 300 if quick else 2000)
        if "memory" in only:
            checkpoints = [2000, 10_000] if quick else [10_000, 100_000]
            results["memory"] = bench_memory(base, checkpoints, endpoints=5)
            save()
        if "e2e_tx" in only:
            results["e2e_tx"] = bench_e2e_tx(base, args.repeat, 40 if quick else 200, 5)
        if "request_tx" in only:
            results["request_tx"] = bench_request_tx(base, args.repeat, 40 if quick else 200, 5)
    save()
    if "slow" in only:
        results["slow"] = bench_slow(args.repeat, 20 if quick else 100, 10, [100, 500])
        save()
    if "latency" in only:
        results["latency"] = bench_latency(20, 3 if quick else 10, endpoints=10)
        save()
    if "noisy" in only:
        results["noisy"] = bench_noisy(1 if quick else min(args.repeat, 2), 10 if quick else 40, 10)
        save()
    if "crash" in only:
        results["crash"] = bench_crash(100 if quick else 300, endpoints=10)
        save()
    if "scale" in only and connection.vendor == "postgresql":
        sizes = {1: 500, 2: 1000, 4: 1000} if quick else {1: 4000, 2: 6000, 4: 8000}
        results["scale"] = bench_scale(sizes, endpoints=20)
    reset_data()
    save()


if __name__ == "__main__":
    main()
