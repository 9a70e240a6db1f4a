"""A fast webhook receiver on 127.0.0.1 for fault-injection and load runs.

A raw asyncio HTTP/1.1 server in its own thread: keep-alive, no Nagle delay (thousands of
requests per second, where ``tests/receiver.py`` manages ~25 on keep-alive), and it records every
``webhook-id`` it accepts per path. Each path can be scripted to fail, hang, reset the connection
or flap:

    receiver = FastReceiver()
    receiver.script("/flaky", 500, HANG, RESET)   # the next three requests to /flaky, then 200
    receiver.behave("/down", 503)                 # every request to /down, until changed
    receiver.behave("/flap", Flaky(0.3, seed=1))  # 30% of requests answered 500
    ...
    receiver.accepted[("/flaky", "msg_...")]      # times that id was answered 2xx on that path
    receiver.close()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

HANG = "hang"  # read the request, never answer; the connection closes after ``hang_seconds``
RESET = "reset"  # read the request, then abort the connection with a TCP RST


@dataclass
class Flaky:
    """Answer ``status`` to a ``rate`` share of requests (seeded, so runs repeat), else 200."""

    rate: float
    status: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self) -> int:
        return self.status if self._rng.random() < self.rate else 200


Action = int | str | Flaky

REASONS = {200: "OK", 204: "No Content", 410: "Gone", 429: "Too Many Requests"}


@dataclass(frozen=True)
class Request:
    path: str
    webhook_id: str
    action: str  # the status answered, "hang" or "reset"
    at: float  # time.time() when the request was read


class FastReceiver:
    """Records ``accepted`` (a Counter of ``(path, webhook_id)`` answered 2xx) and ``log``."""

    def __init__(self, *, hang_seconds: float = 30.0) -> None:
        self.hang_seconds = hang_seconds
        self.accepted: collections.Counter[tuple[str, str]] = collections.Counter()
        self.log: list[Request] = []
        self._scripts: dict[str, collections.deque[Action]] = {}
        self._modes: dict[str, Action] = {}
        self._held: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the receiver did not start")

    # -- scripting (any thread) --------------------------------------------------------------

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *actions: Action) -> None:
        """Answer the next requests to ``path`` with ``actions``, then as ``behave`` says."""
        with self._lock:
            self._scripts[path] = collections.deque(actions)

    def behave(self, path: str, action: Action) -> None:
        """Answer every request to ``path`` (once its script is used up) with ``action``."""
        with self._lock:
            self._modes[path] = action

    def hold(self, path: str) -> None:
        """Make requests to ``path`` wait (connection open, no answer) until ``release``."""
        with self._lock:
            self._held[path] = threading.Event()

    def release(self, path: str) -> None:
        with self._lock:
            held = self._held.pop(path, None)
        if held is not None:
            held.set()

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    def wait_for(self, count: int, *, path: str | None = None, timeout: float = 30.0) -> None:
        """Block until ``count`` requests (to ``path``, or to any path) have been read."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                seen = len(self.log) if path is None else sum(r.path == path for r in self.log)
                if seen >= count:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{seen} of {count} requests arrived within {timeout}s")
                self._arrived.wait(min(left, 0.2))

    def close(self) -> None:
        for event in list(self._held.values()):
            event.set()
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(timeout=10)

    # -- the server (its own thread) ---------------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def _shutdown(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._loop.stop()

    def _next_action(self, path: str) -> Action:
        script = self._scripts.get(path)
        if script:
            return script.popleft()
        return self._modes.get(path, 200)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    return
                path, headers = parse_head(head)
                length = int(headers.get("content-length") or 0)
                try:
                    await reader.readexactly(length)
                except (asyncio.IncompleteReadError, OSError):
                    return
                with self._arrived:
                    action = self._next_action(path)
                    held = self._held.get(path)
                status = action.pick() if isinstance(action, Flaky) else action
                webhook_id = headers.get("webhook-id", "")
                with self._arrived:
                    self.log.append(Request(path, webhook_id, str(status), time.time()))
                    self._arrived.notify_all()
                if held is not None:
                    await asyncio.get_running_loop().run_in_executor(None, held.wait, 60)
                if isinstance(status, int) and 200 <= status < 300:
                    with self._lock:
                        self.accepted[(path, webhook_id)] += 1
                if status == HANG:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(reader.read(), self.hang_seconds)
                    return
                if status == RESET:
                    if sock is not None:
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    writer.transport.abort()
                    return
                assert isinstance(status, int)
                reason = REASONS.get(status, "Error" if status >= 400 else "OK")
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\ncontent-length: 2\r\n"
                    "content-type: text/plain\r\n\r\nok".encode()
                )
                await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


def parse_head(head: bytes) -> tuple[str, dict[str, Any]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    path = parts[1] if len(parts) > 1 else "/"
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return path, headers
