"""A fast webhook receiver for benchmarks: raw asyncio (uvloop when installed) on 127.0.0.1.

It answers every POST with 200 on a keep-alive HTTP/1.1 connection, counts unique
``(path, webhook-id)`` pairs and duplicates, and verifies the signature of one request in
``--sample``. ``GET /stats`` answers the counts as JSON; ``POST /reset`` zeroes them.

    python benchmarks/receiver.py --port 8123 --secret whsec_... [--sample 50]

Python's ``http.server`` is no benchmark target: with keep-alive it stalls ~40 ms per request
(Nagle + delayed ACK) and makes every sender look slow. This one sets TCP_NODELAY and answers
each request with one write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django_hooks.core.errors import InvalidSignature
from django_hooks.core.signing import verify_headers

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


class Stats:
    def __init__(self, secret: str, sample: int) -> None:
        self.secret = secret
        self.sample = max(1, sample)
        self.reset()

    def reset(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.requests = 0
        self.duplicates = 0
        self.verified = 0
        self.bad_signatures = 0

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.requests += 1
        key = (path, headers.get("webhook-id", ""))
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(key)
        if self.secret and self.requests % self.sample == 0:
            try:
                verify_headers(self.secret, headers, body)
                self.verified += 1
            except InvalidSignature:
                self.bad_signatures += 1

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "unique": len(self.seen),
                "duplicates": self.duplicates,
                "verified": self.verified,
                "bad_signatures": self.bad_signatures,
            }
        ).encode()


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path = head[0].split(" ")[:2]
            self.respond(method, path, headers, body)

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        if method == "GET" and path == "/stats":
            payload = self.stats.as_json()
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            return
        if method == "POST" and path == "/reset":
            self.stats.reset()
        else:
            self.stats.record(path, headers, body)
        self.transport.write(OK)  # type: ignore[attr-defined]


async def serve(port: int, stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HTTPProtocol(stats), "127.0.0.1", port, backlog=1024)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default="")
    parser.add_argument("--sample", type=int, default=50)
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(args.port, Stats(args.secret, args.sample)))


if __name__ == "__main__":
    main()
