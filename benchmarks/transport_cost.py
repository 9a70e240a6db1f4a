"""What requests as the delivery client costs: POSTs per second of the requests-based transport
against the urllib3 transport it replaced, in one run, against an instant local receiver.

    python benchmarks/transport_cost.py [--posts 2000] [--threads 16] [--repeats 5]

The receiver is ``benchmarks/receiver.py`` in its own process on 127.0.0.1 (answers at once, on
keep-alive). Each case POSTs the same signed ~1 KB body with delivery-like headers, ``--posts``
times, sequentially and then from ``--threads`` threads sharing one transport (one pool of
``--threads`` connections), as the delivery engine does. Runs alternate between the transports
(old, new, old, new...) so drift on a noisy machine hits both alike; each figure is the median
of ``--repeats`` runs, each ratio (new / old) the median of the ratios of runs made side by
side. A bare ``requests.Session.post`` loop (``trust_env`` off) is printed for context.

The old transport is ``benchmarks/legacy_transport.py``, a verbatim copy kept only as this
reference. Bounded: every run stops after ``--max-seconds`` whatever it reached, loopback only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from benchmarks import legacy_transport  # noqa: E402  (REFERENCE ONLY: the urllib3 transport)
from django_hooks.core.signing import Signer  # noqa: E402
from django_hooks.core.urlguard import URLGuard  # noqa: E402
from django_hooks.outbound import transport as requests_transport  # noqa: E402
from django_hooks.testing import free_port, wait_for_port  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LOOPBACK = ["127.0.0.0/8"]

Post = Callable[[int], int]  # n -> status code


def signed_request(n: int) -> tuple[bytes, dict[str, str]]:
    body = (
        b'{"type":"order.paid","timestamp":"2024-01-01T00:00:00Z","data":{"id":%d,"note":"' % n
        + b"x" * 900
        + b'"}}'
    )
    msg_id, timestamp = f"msg_{n:08d}", int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Signer([SECRET]).header(msg_id, timestamp, body),
        "x-endpoint-header": "value",
    }
    return body, headers


def run(post: Post, posts: int, threads: int, max_seconds: float) -> float:
    """POSTs per second for ``posts`` calls of ``post`` spread over ``threads`` threads."""
    deadline = time.monotonic() + max_seconds
    counter = iter(range(posts))
    lock = threading.Lock()
    done = [0]
    failures: list[str] = []

    def work() -> None:
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            status = post(n)
            if status != 200:
                failures.append(str(status))
                return
            with lock:
                done[0] += 1

    started = time.perf_counter()
    if threads == 1:
        work()
    else:
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} POSTs failed, e.g. {failures[0]}")
    return done[0] / elapsed


def transport_post(transport: object, url: str) -> Post:
    prepared = [signed_request(n) for n in range(64)]

    def post(n: int) -> int:
        body, headers = prepared[n % 64]
        result = transport.post(url, body, headers)  # type: ignore[attr-defined]
        if result.error:
            raise RuntimeError(result.error)
        return int(result.status_code or 0)

    return post


def bare_requests_post(session: requests.Session, url: str) -> Post:
    prepared = [signed_request(n) for n in range(64)]

    def post(n: int) -> int:
        body, headers = prepared[n % 64]
        response = session.post(url, data=body, headers=headers, timeout=15)
        response.content  # noqa: B018
        return response.status_code

    return post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000, help="POSTs per run (default 2000)")
    parser.add_argument("--threads", type=int, default=16, help="threads of the threaded runs")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case; medians printed")
    parser.add_argument("--max-seconds", type=float, default=20, help="cap on one run")
    args = parser.parse_args()
    posts = max(1, min(args.posts, 100_000))
    threads = max(2, min(args.threads, 64))

    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "receiver.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, receiver)
        url = f"http://127.0.0.1:{port}/hook"
        results = measure(url, posts, threads, args.repeats, args.max_seconds)
    finally:
        receiver.terminate()
        receiver.wait(10)
    report(results, posts, threads, args.repeats)


def measure(url: str, posts: int, threads: int, repeats: int, cap: float) -> dict:
    def legacy(connections: int) -> object:
        return legacy_transport.Transport(guard=URLGuard(LOOPBACK), max_connections=connections)

    def current(connections: int) -> object:
        return requests_transport.Transport(guard=URLGuard(LOOPBACK), max_connections=connections)

    results: dict[tuple[str, str], list[float]] = {}
    for mode, count in (("sequential", 1), (f"{threads} threads", threads)):
        for make in (legacy, current):
            with make(count) as warm:  # type: ignore[attr-defined]
                run(transport_post(warm, url), min(200, posts), count, cap)
        for _ in range(repeats):
            for name, make in (("urllib3 (old)", legacy), ("requests (new)", current)):
                transport = make(count)
                try:
                    rate = run(transport_post(transport, url), posts, count, cap)
                finally:
                    transport.close()  # type: ignore[attr-defined]
                results.setdefault((mode, name), []).append(rate)
            session = requests.Session()
            session.trust_env = False
            session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=count))
            try:
                rate = run(bare_requests_post(session, url), posts, count, cap)
            finally:
                session.close()
            results.setdefault((mode, "bare Session.post (context)"), []).append(rate)
    return results


def report(results: dict, posts: int, threads: int, repeats: int) -> None:
    print(f"transport cost: {posts} POSTs per run, median of {repeats}, instant local receiver")
    print(f"{'mode':<14} {'client':<30} {'POSTs/s':>9}   runs")
    for (mode, name), rates in results.items():
        runs = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"{mode:<14} {name:<30} {statistics.median(rates):>9,.0f}   {runs}")
    print()
    for mode in ("sequential", f"{threads} threads"):
        old, new, bare = (
            results[(mode, name)]
            for name in ("urllib3 (old)", "requests (new)", "bare Session.post (context)")
        )
        vs_old = statistics.median(n / o for n, o in zip(new, old, strict=True))
        vs_bare = statistics.median(n / b for n, b in zip(new, bare, strict=True))
        print(
            f"{mode}: requests transport / urllib3 transport = {vs_old:.2f}x; "
            f"/ bare Session.post = {vs_bare:.2f}x"
        )


if __name__ == "__main__":
    main()
