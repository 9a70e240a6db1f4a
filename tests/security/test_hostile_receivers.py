"""Hostile receivers: each misbehaving server is hit through the real delivery path.

``send_event`` writes the deliveries, the in-process RQ worker attempts them against a raw-socket
server on 127.0.0.1 (``tests/security/hostile.py``). Each scenario checks the worker survives (a
healthy endpoint in the same batch still gets its delivery), the attempt records a clear error,
and the delivery is retried per ``RETRY_SCHEDULE``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import socket
from dataclasses import dataclass

import pytest
from django.test import override_settings
from django.utils import timezone

import django_hooks
from django_hooks.models import Delivery, Endpoint
from django_hooks.testing import run_worker
from tests.security.hostile import HostileServer, reset

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]

READ_LIMIT = 64 * 1024
HUGE = 64 * 1024 * 1024  # what an oversized response claims; far beyond any socket buffer
RETRY_IN = 600  # the first retry, in seconds: far enough that no second attempt runs here


def hooks(timeout: float = 2):
    return override_settings(
        DJANGO_HOOKS={
            "ALLOWED_NETWORKS": ["127.0.0.0/8"],
            "RETRY_SCHEDULE": [RETRY_IN],
            "TIMEOUT": timeout,
        }
    )


# -- behaviours -----------------------------------------------------------------------------------


def head(status: int, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def oversized(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, head(200, f"Content-Length: {HUGE}"))
    chunk = b"x" * 65536
    for _ in range(HUGE // len(chunk)):
        if not server.alive or not server.send(conn, chunk):
            return


def oversized_chunked(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, head(200, "Transfer-Encoding: chunked"))
    chunk = b"10000\r\n" + b"y" * 65536 + b"\r\n"
    for _ in range(HUGE // 65536):
        if not server.alive or not server.send(conn, chunk):
            return


def trickle_body(conn: socket.socket, server: HostileServer) -> None:
    # Every byte arrives well within the per-read timeout; only a total deadline stops this.
    server.send(conn, head(500, "Content-Length: 40"))
    for _ in range(40):
        if not server.pause(0.4) or not server.send(conn, b"a"):
            return


def trickle_head(conn: socket.socket, server: HostileServer) -> None:
    for byte in head(200, "Content-Length: 2", "X-Slow: " + "z" * 40) + b"ok":
        if not server.pause(0.4) or not server.send(conn, bytes([byte])):
            return


def silent(conn: socket.socket, server: HostileServer) -> None:
    server.pause(15)


def invalid_chunked(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, head(500, "Transfer-Encoding: chunked") + b"zz-not-hex\r\nabc\r\n")


GZIP_BOMB = gzip.compress(bytes(20 * 1024 * 1024), compresslevel=9)  # 20 MiB of zeros, ~20 KiB


def gzip_bomb(conn: socket.socket, server: HostileServer) -> None:
    server.send(
        conn,
        head(500, "Content-Encoding: gzip", f"Content-Length: {len(GZIP_BOMB)}") + GZIP_BOMB,
    )


NOT_UTF8 = b"caf\xe9 \xff\xfe \xc3\x28 \xed\xa0\x80 end"


def non_utf8(conn: socket.socket, server: HostileServer) -> None:
    headers = (f"Content-Length: {len(NOT_UTF8)}", "X-Name: caf\xe9")
    server.send(conn, head(500, *headers) + NOT_UTF8)


def nul_bytes(conn: socket.socket, server: HostileServer) -> None:
    body = b"nul\x00in\x00body"
    headers = (f"Content-Length: {len(body)}", "X-Nul: a\x00b")
    server.send(conn, head(500, *headers) + body)


def nul_status_line(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, b"\x00\x00\x00 hello" + b"\x00" * 5000 + b"\r\n\r\n")


def many_headers(conn: socket.socket, server: HostileServer) -> None:
    lines = [f"X-Header-{i}: {i}" for i in range(5000)]
    server.send(conn, head(200, "Content-Length: 2", *lines) + b"ok")


def huge_header_line(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, head(200, "X-Big: " + "b" * 200_000, "Content-Length: 2") + b"ok")


def reset_mid_body(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, head(500, "Content-Length: 1000") + b"0123456789")
    server.pause(0.1)
    reset(conn)


def reset_mid_head(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Le")
    server.pause(0.1)
    reset(conn)


def hang_up(conn: socket.socket, server: HostileServer) -> None:
    conn.shutdown(socket.SHUT_RDWR)


def garbage(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")


# -- scenarios ------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    behaviour: object
    error: str  # expected start of the attempt's error; "" when the attempt is a success
    status_code: int | None
    timeout: float = 2
    retried: bool = True

    def __str__(self) -> str:
        return self.name


SCENARIOS = [
    # A 2xx is a success however big its body: we read 64 KiB and hang up.
    Scenario("oversized body", oversized, "", 200, retried=False),
    Scenario("oversized chunked body", oversized_chunked, "", 200, retried=False),
    Scenario("body trickled a byte at a time", trickle_body, "timed out after 1s", 500, timeout=1),
    Scenario("head trickled a byte at a time", trickle_head, "timed out after 1s", None, timeout=1),
    Scenario("accepts, never answers", silent, "timed out after 1s", None, timeout=1),
    Scenario("invalid chunked encoding", invalid_chunked, "protocol error: ", 500),
    Scenario("gzip bomb", gzip_bomb, "", 500),
    Scenario("non-UTF-8 body and header", non_utf8, "", 500),
    Scenario("NUL bytes in headers and body", nul_bytes, "", 500),
    Scenario("NUL bytes in the status line", nul_status_line, "protocol error: ", None),
    Scenario("5000 response headers", many_headers, "protocol error: ", None),
    Scenario("200 KB header line", huge_header_line, "protocol error: ", None),
    Scenario("connection reset mid-body", reset_mid_body, "connection reset", 500),
    Scenario("connection reset mid-head", reset_mid_head, "connection reset", None),
    Scenario(
        "hang up without answering",
        hang_up,
        "connection closed by the server without a response",
        None,
    ),
    Scenario("not HTTP at all", garbage, "protocol error: ", None),
]


@pytest.fixture
def hostile():
    servers: list[HostileServer] = []

    def start(behaviour) -> HostileServer:
        server = HostileServer(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def attempt_once(url: str, healthy_url: str, timeout: float) -> tuple[Delivery, Delivery]:
    """One event to the hostile endpoint and a healthy one, one worker run; both deliveries."""
    with hooks(timeout):
        bad = Endpoint.objects.create(url=url)
        good = Endpoint.objects.create(url=healthy_url)
        event = django_hooks.send_event("order.paid", {"id": 1})
        before = timezone.now()
        assert run_worker(), "the worker did no work"
    deliveries = Delivery.objects.filter(event=event)
    bad_delivery, good_delivery = deliveries.get(endpoint=bad), deliveries.get(endpoint=good)
    bad_delivery.before = before  # type: ignore[attr-defined]
    return bad_delivery, good_delivery


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_worker_survives_hostile_receiver(scenario: Scenario, hostile, receiver) -> None:
    server = hostile(scenario.behaviour)
    delivery, healthy = attempt_once(server.url(), receiver.url(), scenario.timeout)

    # The worker went on to the next delivery in the batch.
    assert healthy.status == "succeeded", healthy.last_error
    assert len(server.requests) == 1
    attempt = delivery.attempt_log.get()
    assert attempt.error.startswith(scenario.error) if scenario.error else attempt.error == ""
    assert attempt.status_code == scenario.status_code
    assert len(attempt.response_body) <= 4096 and len(attempt.error) <= 1000
    if scenario.retried:
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.last_error, "a failed attempt must say why"
        expected = delivery.before + dt.timedelta(seconds=RETRY_IN)
        assert abs(delivery.next_attempt_at - expected) <= dt.timedelta(seconds=RETRY_IN * 0.25)
    else:
        assert delivery.status == "succeeded"


def test_oversized_response_is_not_read_past_the_cap(hostile, receiver) -> None:
    server = hostile(oversized)
    delivery, _ = attempt_once(server.url(), receiver.url(), 2)
    assert delivery.status == "succeeded"
    # Socket buffers hold a few MiB at most; had the client read on, all 64 MiB would be sent.
    server.close()
    assert server.bytes_sent < HUGE // 4
    assert delivery.attempt_log.get().response_body == "x" * 4096


def test_gzip_bomb_is_never_inflated(hostile, receiver) -> None:
    server = hostile(gzip_bomb)
    delivery, _ = attempt_once(server.url(), receiver.url(), 2)
    (request,) = server.requests
    assert request.headers["accept-encoding"] == "identity"
    attempt = delivery.attempt_log.get()
    # Stored as the compressed bytes sent (gzip magic 1f 8b), not as inflated zeros.
    assert attempt.response_body.startswith("\x1f\ufffd\x08")
    stored = GZIP_BOMB.replace(b"\x00", "\ufffd".encode())[:4096]
    assert attempt.response_body == stored.decode("utf-8", errors="replace")
    assert attempt.response_headers["content-encoding"] == "gzip"


def test_non_utf8_body_is_stored_with_replacement_characters(hostile, receiver) -> None:
    server = hostile(non_utf8)
    delivery, _ = attempt_once(server.url(), receiver.url(), 2)
    attempt = delivery.attempt_log.get()
    assert attempt.response_body == NOT_UTF8.decode("utf-8", errors="replace")
    assert attempt.response_headers["x-name"] == "caf\xe9"
    assert delivery.last_error == "HTTP 500"


def test_trickle_is_cut_by_the_total_deadline_not_per_read(hostile, receiver) -> None:
    server = hostile(trickle_body)
    delivery, _ = attempt_once(server.url(), receiver.url(), 1)
    attempt = delivery.attempt_log.get()
    assert attempt.error == "timed out after 1s"
    # Bytes kept coming every 0.4 s, under the 1 s per-read timeout: only a total deadline
    # explains the cut. 40 bytes would take 16 s; the attempt stopped within a few.
    assert server.bytes_sent < len(head(500, "Content-Length: 40")) + 10
    assert attempt.duration_ms < 5000


def test_nul_bytes_are_stored_as_replacement_characters(hostile, receiver) -> None:
    # PostgreSQL cannot store NUL in text or JSON: unreplaced, the batch's results are lost.
    delivery, healthy = attempt_once(hostile(nul_bytes).url(), receiver.url(), 2)
    attempt = delivery.attempt_log.get()
    assert attempt.response_body == "nul\ufffdin\ufffdbody"
    assert attempt.response_headers["x-nul"] == "a\ufffdb"
    assert healthy.status == "succeeded"


def test_2xx_followed_by_a_reset_is_retried(hostile, receiver) -> None:
    def respond(conn: socket.socket, server: HostileServer) -> None:
        server.send(conn, head(200, "Content-Length: 1000") + b"partial")
        server.pause(0.1)
        reset(conn)

    delivery, _ = attempt_once(hostile(respond).url(), receiver.url(), 2)
    assert delivery.attempt_log.get().error == "connection reset"
    assert delivery.status == "pending"
