"""Tiny real servers on 127.0.0.1 and fake resolvers for the transport tests; "public" names
exist only in fake resolvers."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

LOOPBACK = ["127.0.0.0/8"]
FAKE_PUBLIC_IP = "93.184.215.14"  # never connected to: only the guard sees it


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Responder = Callable[[Request, socket.socket], bool]  # returns whether to keep the connection


def read_request(rfile: BinaryIO) -> Request | None:
    line = rfile.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := rfile.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = rfile.read(int(headers.get("content-length", "0")))
    return Request(method, target, headers, body)


def response_bytes(status: int, body: bytes = b"", headers: list[tuple[str, str]] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def respond_with(status: int, body: bytes = b"", headers: list[tuple[str, str]] = ()) -> Responder:
    def respond(request: Request, conn: socket.socket) -> bool:
        conn.sendall(response_bytes(status, body, headers))
        return not any(v.lower() == "close" for n, v in headers if n.lower() == "connection")

    return respond


@dataclass
class Server:
    """A tiny threaded HTTP/1.1 server on 127.0.0.1 that records connections and requests."""

    respond: Responder
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._listener = socket.create_server((self.host, 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/hook", host: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn.makefile("rb") as rfile:
                while (request := read_request(rfile)) is not None:
                    self.requests.append(request)
                    if not self.respond(request, conn):
                        break
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self._listener.close()
        for conn in self._open:
            conn.close()


class CountingResolver:
    """Fake DNS: answers from a script (the last answer repeats) and counts lookups."""

    def __init__(self, *answers: list[str] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def tls_server(
    serve: Callable[..., Server],
    certificate: Path,
    server_names: list[str | None],
    client_ca: Path | None = None,
) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    if client_ca is not None:  # demand a client certificate signed by this CA
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    return serve(respond_with(200, b"secure"), tls=context)
