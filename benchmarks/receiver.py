"""A fast webhook receiver for benchmarks: raw asyncio (uvloop when installed) on 127.0.0.1.

It answers every POST with 200 on a keep-alive HTTP/1.1 connection, counts unique
``(path, webhook-id)`` pairs and duplicates, records when each unique one first arrived, and
verifies the signature of one request in ``--sample``.

    python benchmarks/receiver.py --port 8123 --secret whsec_... [--sample 50] [--delay 100]
                                  [--path-delay /slow=500] [--path-delay /hang=-1]

``--delay`` answers every POST that many milliseconds after it arrived; ``--path-delay
PREFIX=MS`` overrides it for paths starting with ``PREFIX``, and a negative ``MS`` never answers
(the connection is held open until the sender gives up). Paths starting with ``/hang`` never
answer unless overridden. Answers are scheduled on the event loop (``call_later``), never slept
on, so a late receiver still handles hundreds of connections at once and is never the
bottleneck. A request on a never-answering path is counted as ``held``, not as delivered.

``GET /stats`` answers the counts as JSON (``GET /stats?paths=1`` adds unique deliveries per
path); ``GET /arrivals`` answers ``[[path, webhook-id, unix time of first arrival], ...]``;
``POST /reset`` zeroes everything. Control paths are answered at once.

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
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django_hooks.core.errors import InvalidSignature
from django_hooks.core.signing import verify_headers

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
NEVER = -1.0
DEFAULT_PATH_DELAYS = {"/hang": NEVER}


class Stats:
    def __init__(self, secret: str, sample: int) -> None:
        self.secret = secret
        self.sample = max(1, sample)
        self.reset()

    def reset(self) -> None:
        # (path, webhook-id) -> unix time of its first arrival
        self.seen: dict[tuple[str, str], float] = {}
        self.per_path: Counter[str] = Counter()
        self.requests = 0
        self.duplicates = 0
        self.held = 0
        self.verified = 0
        self.bad_signatures = 0

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.requests += 1
        key = (path, headers.get("webhook-id", ""))
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen[key] = time.time()
            self.per_path[path] += 1
        if self.secret and self.requests % self.sample == 0:
            try:
                verify_headers(self.secret, headers, body)
                self.verified += 1
            except InvalidSignature:
                self.bad_signatures += 1

    def as_json(self, paths: bool = False) -> bytes:
        stats: dict[str, object] = {
            "requests": self.requests,
            "unique": len(self.seen),
            "duplicates": self.duplicates,
            "held": self.held,
            "verified": self.verified,
            "bad_signatures": self.bad_signatures,
        }
        if paths:
            stats["paths"] = dict(self.per_path)
        return json.dumps(stats).encode()

    def arrivals_json(self) -> bytes:
        return json.dumps([[p, i, t] for (p, i), t in self.seen.items()]).encode()


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, stats: Stats, delay: float, path_delays: dict[str, float]) -> None:
        self.stats = stats
        self.delay = delay
        self.path_delays = path_delays
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

    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            self.transport.write(data)  # type: ignore[attr-defined]

    def write_json(self, payload: bytes) -> None:
        self.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )

    def delay_for(self, path: str) -> float:
        for prefix, delay in self.path_delays.items():
            if path.startswith(prefix):
                return delay
        return self.delay

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        if method == "GET" and path.startswith("/stats"):
            self.write_json(self.stats.as_json(paths="paths=1" in path))
            return
        if method == "GET" and path == "/arrivals":
            self.write_json(self.stats.arrivals_json())
            return
        if method == "POST" and path == "/reset":
            self.stats.reset()
            self.write(OK)
            return
        delay = self.delay_for(path)
        if delay < 0:
            self.stats.held += 1  # held open, never answered: the sender times out
            return
        self.stats.record(path, headers, body)
        if delay == 0:
            self.write(OK)
        else:
            asyncio.get_running_loop().call_later(delay, self.write, OK)


async def serve(port: int, stats: Stats, delay: float, path_delays: dict[str, float]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HTTPProtocol(stats, delay, path_delays), "127.0.0.1", port, backlog=4096
    )
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def path_delay(value: str) -> tuple[str, float]:
    prefix, _, ms = value.partition("=")
    if not prefix.startswith("/") or not ms:
        raise argparse.ArgumentTypeError("expected PREFIX=MS, e.g. /slow=500 or /hang=-1")
    delay = float(ms)
    return prefix, NEVER if delay < 0 else delay / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default="")
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0, help="milliseconds before answering")
    parser.add_argument(
        "--path-delay",
        type=path_delay,
        action="append",
        default=[],
        metavar="PREFIX=MS",
        help="per-path override; MS < 0: never answer",
    )
    args = parser.parse_args()
    # Longest prefix first, so that /hang-slow=... can override /hang.
    delays = {**DEFAULT_PATH_DELAYS, **dict(args.path_delay)}
    path_delays = dict(sorted(delays.items(), key=lambda item: -len(item[0])))
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(args.port, Stats(args.secret, args.sample), args.delay / 1000, path_delays))


if __name__ == "__main__":
    main()
