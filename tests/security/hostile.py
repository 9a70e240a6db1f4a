"""A misbehaving HTTP receiver on 127.0.0.1: raw sockets, one thread per connection.

``HostileServer(behaviour)`` reads each request (head and Content-Length body), records it, then
hands the socket to ``behaviour(conn, server)``, which answers as badly as it likes. Every thread
stops when the server closes or its lifetime runs out, whichever comes first.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Behaviour = Callable[[socket.socket, "HostileServer"], None]


@dataclass
class RawRequest:
    head: bytes
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }


class HostileServer:
    def __init__(self, behaviour: Behaviour, *, lifetime: float = 20.0) -> None:
        self.behaviour = behaviour
        self.requests: list[RawRequest] = []
        self.bytes_sent = 0  # behaviours add what they managed to write
        self.stopped = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepting.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def alive(self) -> bool:
        return not self.stopped.is_set() and time.monotonic() < self._deadline

    def send(self, conn: socket.socket, data: bytes) -> bool:
        """Write ``data``; False once the client has gone (it stopped reading or hung up)."""
        try:
            conn.sendall(data)
        except OSError:
            return False
        self.bytes_sent += len(data)
        return True

    def pause(self, seconds: float) -> bool:
        """Sleep unless the server is closing; False when it is."""
        return not self.stopped.wait(seconds) and self.alive

    def _accept_loop(self) -> None:
        while self.alive:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(5)
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            self.behaviour(conn, self)

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()
        self._accepting.join(timeout=5)
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)


def _read_request(conn: socket.socket) -> RawRequest | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(RawRequest(head, b"").headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawRequest(head, body)


def reset(conn: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
