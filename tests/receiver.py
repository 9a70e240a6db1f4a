"""A real HTTP receiver on 127.0.0.1 that records every request and answers as scripted."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import override_settings


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: dict[str, list[Reply]] = {}
        self.default = Reply()
        self._lock = threading.Lock()
        self._threads: list[tuple[threading.Thread, socket.socket]] = []
        #: Requests being answered right now, and the most there ever were at once, per path.
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # idle keep-alive connections end, so their threads do too

            def handle(self) -> None:
                receiver._threads.append((threading.current_thread(), self.request))
                with contextlib.suppress(OSError):
                    super().handle()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    script = receiver.replies.get(self.path)
                    reply = script.pop(0) if script else receiver.default
                    now = receiver.in_flight[self.path] = receiver.in_flight.get(self.path, 0) + 1
                    most = receiver.most_in_flight.get(self.path, 0)
                    receiver.most_in_flight[self.path] = max(most, now)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                finally:
                    with receiver._lock:
                        receiver.in_flight[self.path] -= 1
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies``, then with the default."""
        self.replies[path] = list(replies)

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        # End idle keep-alive connections and let a sleeping reply finish, so that no handler
        # thread is still running (and printing) when Python exits.
        for thread, sock in self._threads:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            thread.join(timeout=5)


def hooks(**overrides):
    """``DJANGO_HOOKS`` for delivering to this receiver: loopback allowed, retries due at once,
    a 2 s timeout; ``overrides`` on top."""
    return override_settings(
        DJANGO_HOOKS={
            "ALLOWED_NETWORKS": ["127.0.0.0/8"],
            "RETRY_SCHEDULE": [0, 0, 0],
            "TIMEOUT": 2,
            **overrides,
        }
    )
