"""The transport against real servers on 127.0.0.1; "public" names exist only in fake resolvers."""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time

import pytest

from django_hooks.core.urlguard import URLGuard
from django_hooks.outbound.transport import HTTPResult, Transport
from tests.outbound.servers import (
    FAKE_PUBLIC_IP,
    LOOPBACK,
    CountingResolver,
    Request,
    Responder,
    respond_with,
    response_bytes,
    tls_server,
)


def post(transport: Transport, url: str, body: bytes = b'{"x": 1}') -> HTTPResult:
    return transport.post(url, body, {"Content-Type": "application/json"})


# -- responses ------------------------------------------------------------------------------------


def test_2xx_returns_status_headers_and_body(serve, transports) -> None:
    server = serve(
        respond_with(
            201,
            b"created",
            [("X-Request-Id", "abc"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")],
        )
    )
    result = post(transports(), server.url("/hook?x=1"), b'{"event": "ping"}')

    assert result.error == ""
    assert result.status_code == 201
    assert result.body == b"created"
    assert result.headers["x-request-id"] == "abc"
    assert result.headers["set-cookie"] == "a=1, b=2"
    assert result.headers["content-length"] == "7"
    assert isinstance(result.duration_ms, int)
    assert result.duration_ms >= 0
    [request] = server.requests
    assert (request.method, request.target) == ("POST", "/hook?x=1")
    assert request.body == b'{"event": "ping"}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "django-hooks"
    assert request.headers["accept-encoding"] == "identity"


def test_custom_user_agent_and_identity_encoding_cannot_be_overridden(serve, transports) -> None:
    server = serve(respond_with(204))
    transport = transports(user_agent="acme-hooks/1.0")
    result = transport.post(server.url(), b"", {"Accept-Encoding": "gzip"})
    assert (result.status_code, result.error) == (204, "")
    assert server.requests[0].headers["user-agent"] == "acme-hooks/1.0"
    assert server.requests[0].headers["accept-encoding"] == "identity"


def test_redirect_is_returned_not_followed(serve, transports) -> None:
    server = serve(respond_with(302, b"", [("Location", "/elsewhere")]))
    result = post(transports(), server.url("/hook"))
    assert result.status_code == 302
    assert result.error == ""
    assert result.headers["location"] == "/elsewhere"
    assert [r.target for r in server.requests] == ["/hook"]


def test_server_error_is_a_response_not_an_error(serve, transports) -> None:
    server = serve(respond_with(500, b"boom"))
    result = post(transports(), server.url())
    assert (result.status_code, result.body, result.error) == (500, b"boom", "")


def test_gzip_body_is_returned_raw(serve, transports) -> None:
    compressed = gzip.compress(b"hello " * 1000)
    server = serve(respond_with(200, compressed, [("Content-Encoding", "gzip")]))
    result = post(transports(), server.url())
    assert result.error == ""
    # Raw, except that NUL bytes (which PostgreSQL text cannot hold) become U+FFFD.
    assert result.body == compressed.replace(b"\x00", "\ufffd".encode())
    assert result.headers["content-encoding"] == "gzip"
    assert server.requests[0].headers["accept-encoding"] == "identity"


# -- read limit and keep-alive --------------------------------------------------------------------


def test_body_is_cut_at_read_limit_and_connection_dropped(serve, transports) -> None:
    server = serve(respond_with(200, b"x" * 1_000_000))
    transport = transports(read_limit=100)
    result = post(transport, server.url())
    assert (result.status_code, result.error) == (200, "")
    assert result.body == b"x" * 100
    # The rest was not drained: the connection was closed, so the next post opens a new one.
    assert post(transport, server.url()).body == b"x" * 100
    assert server.connections == 2


def test_chunked_body_is_cut_at_read_limit(serve, transports) -> None:
    def respond(request: Request, conn: socket.socket) -> bool:
        conn.sendall(response_bytes(200, b"", [("Transfer-Encoding", "chunked")]))
        for _ in range(100):
            conn.sendall(b"3e8\r\n" + b"y" * 1000 + b"\r\n")
        conn.sendall(b"0\r\n\r\n")
        return True

    server = serve(respond)
    result = post(transports(read_limit=2500), server.url())
    assert (result.status_code, result.error, result.body) == (200, "", b"y" * 2500)


def test_body_exactly_at_read_limit_keeps_the_connection(serve, transports) -> None:
    server = serve(respond_with(200, b"z" * 100))
    transport = transports(read_limit=100)
    assert post(transport, server.url()).body == b"z" * 100
    assert post(transport, server.url()).body == b"z" * 100
    assert server.connections == 1


def test_keep_alive_reuses_one_connection_and_resolves_once(serve, transports) -> None:
    server = serve(respond_with(200, b"ok"))
    resolver = CountingResolver(["127.0.0.1"])
    transport = transports(guard=URLGuard(LOOPBACK, resolver=resolver))
    for _ in range(3):
        result = post(transport, server.url(host="hooks.test"))
        assert (result.status_code, result.error) == (200, "")
    assert server.connections == 1
    assert len(server.requests) == 3
    assert resolver.calls == ["hooks.test"]


# -- deadlines and broken peers -------------------------------------------------------------------


def trickle(head: bytes, stop: threading.Event) -> Responder:
    """Send ``head`` then a byte every 0.3 s for 10 s: each read succeeds, the whole never ends."""

    def respond(request: Request, conn: socket.socket) -> bool:
        conn.sendall(head)
        for _ in range(33):
            if stop.wait(0.3):
                break
            conn.sendall(b"a")
        return False

    return respond


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200),  # slow body
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", None),  # slow headers
    ],
)
def test_trickling_server_hits_total_deadline(serve, transports, head, status) -> None:
    stop = threading.Event()
    server = serve(trickle(head, stop))
    started = time.monotonic()
    result = post(transports(timeout=1), server.url())
    elapsed = time.monotonic() - started
    stop.set()
    assert result.error == "timed out after 1s"
    assert result.status_code == status
    assert elapsed < 3, f"took {elapsed:.1f}s despite a 1s total timeout"


def test_silent_server_times_out(serve, transports) -> None:
    stop = threading.Event()
    server = serve(lambda request, conn: not stop.wait(5))
    started = time.monotonic()
    result = post(transports(timeout=0.5), server.url())
    stop.set()
    assert result.error == "timed out after 0.5s"
    assert result.status_code is None
    assert time.monotonic() - started < 3


def test_a_hanging_resolver_is_held_to_the_total_deadline(serve, transports) -> None:
    """getaddrinfo has no timeout: the attempt must not wait for it past its deadline."""
    server = serve(respond_with(200, b"ok"))
    answer, resolving, returned = threading.Event(), threading.Event(), threading.Event()

    def hanging_resolver(host: str, port: int) -> list[str]:
        resolving.set()
        answer.wait(10)
        returned.set()
        return ["127.0.0.1"]

    transport = transports(guard=URLGuard(LOOPBACK, resolver=hanging_resolver), timeout=0.5)
    result = post(transport, server.url(host="slow-dns.test"))
    # The attempt is over while the lookup still hangs: it waited for its deadline, not for DNS.
    still_hanging = resolving.is_set() and not returned.is_set()
    answer.set()
    assert still_hanging
    assert result.status_code is None and result.unreachable
    assert "timed out" in result.error


def test_connection_refused(transports) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = post(transports(), f"http://127.0.0.1:{port}/hook")
    assert result.status_code is None
    assert result.error == "connection refused"


def test_connection_reset_mid_response(serve, transports) -> None:
    def respond(request: Request, conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # linger 0: the peer gets an RST
        return False

    server = serve(respond)
    result = post(transports(), server.url())
    assert result.error == "connection reset"


def test_server_closing_without_response(serve, transports) -> None:
    server = serve(lambda request, conn: False)
    result = post(transports(), server.url())
    assert result.status_code is None
    assert result.error == "connection closed by the server without a response"


def test_invalid_chunked_body_is_a_protocol_error(serve, transports) -> None:
    def respond(request: Request, conn: socket.socket) -> bool:
        conn.sendall(response_bytes(200, b"", [("Transfer-Encoding", "chunked")]) + b"zz\r\n")
        return False

    server = serve(respond)
    result = post(transports(), server.url())
    assert result.status_code == 200
    assert result.error.startswith("protocol error: ")


def test_garbage_status_line_is_a_protocol_error(serve, transports) -> None:
    def respond(request: Request, conn: socket.socket) -> bool:
        conn.sendall(b"SMTP ready\r\n\r\n")
        return False

    result = post(transports(), serve(respond).url())
    assert result.error.startswith("protocol error: ")


# -- the guard ------------------------------------------------------------------------------------


def test_guard_blocks_loopback_when_nothing_is_allowed(serve, transports) -> None:
    server = serve(respond_with(200))
    result = post(transports(guard=URLGuard()), server.url())
    assert result.status_code is None
    assert result.error == "blocked: 127.0.0.1 is a loopback address (not in ALLOWED_NETWORKS)"
    assert server.connections == 0


def test_guard_blocks_odd_spellings_before_connecting(serve, transports) -> None:
    server = serve(respond_with(200))
    result = post(transports(guard=URLGuard()), f"http://0x7f000001:{server.port}/")
    assert result.error.startswith("blocked: 127.0.0.1 is a loopback address")
    assert server.connections == 0


def test_name_resolving_to_private_address_is_blocked(transports) -> None:
    resolver = CountingResolver(["10.0.0.1"])
    transport = transports(guard=URLGuard(LOOPBACK, resolver=resolver))
    result = post(transport, "http://private.test/hook")
    assert result.error.startswith("blocked: private.test resolves to 10.0.0.1, a private address")
    assert resolver.calls == ["private.test"]


def test_name_with_mixed_public_and_private_answers_is_blocked(transports) -> None:
    resolver = CountingResolver([FAKE_PUBLIC_IP, "192.168.1.1"])
    result = post(transports(guard=URLGuard(resolver=resolver)), "https://mixed.test/hook")
    assert result.error.startswith("blocked: mixed.test resolves to 192.168.1.1")


def test_unresolvable_name(transports) -> None:
    resolver = CountingResolver(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    result = post(transports(guard=URLGuard(resolver=resolver)), "https://nowhere.test/")
    assert result.error == "could not resolve host"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.test/", "blocked: the 'ftp' scheme is not allowed"),
        ("http://user:pw@example.test/", "blocked: credentials in the URL are not allowed"),
        ("http://localhost:1/", "blocked: localhost is a loopback host name"),
    ],
)
def test_url_checks_run_before_sending(transports, url, reason) -> None:
    result = post(transports(guard=URLGuard()), url)
    assert result.error.startswith(reason)


def test_dns_rebinding_cannot_swap_a_kept_alive_connection(serve, transports) -> None:
    server = serve(respond_with(200, b"ok"))
    resolver = CountingResolver(["127.0.0.1"], ["10.0.0.1"])  # vetted first, hostile afterwards
    transport = transports(guard=URLGuard(LOOPBACK, resolver=resolver))
    url = server.url(host="rebind.test")

    for _ in range(2):
        result = post(transport, url)
        assert (result.status_code, result.error) == (200, "")
    # One lookup for one connection; both requests reached the vetted server under the real name.
    assert resolver.calls == ["rebind.test"]
    assert server.connections == 1
    assert [r.headers["host"] for r in server.requests] == [f"rebind.test:{server.port}"] * 2


def test_dns_rebinding_is_caught_on_the_next_connection(serve, transports) -> None:
    server = serve(respond_with(200, b"ok", [("Connection", "close")]))
    resolver = CountingResolver(["127.0.0.1"], ["10.0.0.1"])
    transport = transports(guard=URLGuard(LOOPBACK, resolver=resolver))
    url = server.url(host="rebind.test")

    assert post(transport, url).status_code == 200
    second = post(transport, url)
    assert second.error.startswith("blocked: rebind.test resolves to 10.0.0.1, a private address")
    assert resolver.calls == ["rebind.test", "rebind.test"]  # once per new connection
    assert len(server.requests) == 1


# -- proxy ----------------------------------------------------------------------------------------


def test_proxy_receives_the_request_after_the_target_is_vetted(serve, transports) -> None:
    proxy = serve(respond_with(200, b"via proxy"))
    resolver = CountingResolver([FAKE_PUBLIC_IP])
    # The proxy itself sits on loopback, which this guard would block: proxies are trusted.
    transport = transports(guard=URLGuard(resolver=resolver), proxy=proxy.url(path=""))
    result = post(transport, "http://hooks.test/path")
    assert (result.status_code, result.body, result.error) == (200, b"via proxy", "")
    assert proxy.requests[0].target == "http://hooks.test/path"
    assert resolver.calls == ["hooks.test"]


def test_proxy_does_not_receive_blocked_targets(serve, transports) -> None:
    proxy = serve(respond_with(200))
    resolver = CountingResolver(["169.254.169.254"])
    transport = transports(guard=URLGuard(resolver=resolver), proxy=proxy.url(path=""))
    result = post(transport, "http://hooks.test/path")
    assert result.error.startswith("blocked: hooks.test resolves to 169.254.169.254")
    assert proxy.connections == 0


class NamedResolver:
    """Fake DNS answering per name; records every name looked up."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(f"{host} is not in the fake DNS")
        return self.answers[host]


# "faß" is xn--fa-hia under IDNA 2008 (what requests sends) and fass under IDNA 2003.
IDNA_DNS = {"xn--fa-hia.test": ["169.254.169.254"], "fass.test": [FAKE_PUBLIC_IP]}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_target_is_vetted_by_the_name_the_proxy_is_asked_for(
    serve, transports, scheme
) -> None:
    proxy = serve(respond_with(200))
    resolver = NamedResolver(IDNA_DNS)
    transport = transports(guard=URLGuard(resolver=resolver), proxy=proxy.url(path=""))
    result = post(transport, f"{scheme}://fa\u00df.test/path")
    assert result.error.startswith("blocked: xn--fa-hia.test resolves to 169.254.169.254")
    assert resolver.calls == ["xn--fa-hia.test"]
    assert proxy.connections == 0


def test_proxy_is_asked_for_the_vetted_idna_2008_name(serve, transports) -> None:
    proxy = serve(respond_with(200, b"via proxy"))
    resolver = NamedResolver({"xn--fa-hia.test": [FAKE_PUBLIC_IP]})
    transport = transports(guard=URLGuard(resolver=resolver), proxy=proxy.url(path=""))
    result = post(transport, "http://fa\u00df.test/path")
    assert (result.status_code, result.error) == (200, "")
    assert proxy.requests[0].target == "http://xn--fa-hia.test/path"
    assert resolver.calls == ["xn--fa-hia.test"]


def test_proxy_target_with_a_trailing_dot_is_vetted_as_sent(serve, transports) -> None:
    proxy = serve(respond_with(200))
    resolver = NamedResolver({"hooks.test.": ["10.0.0.1"], "hooks.test": [FAKE_PUBLIC_IP]})
    transport = transports(guard=URLGuard(resolver=resolver), proxy=proxy.url(path=""))
    result = post(transport, "http://hooks.test./path")
    assert result.error.startswith("blocked: hooks.test. resolves to 10.0.0.1")
    assert proxy.connections == 0


@pytest.mark.parametrize(
    "name", ["Proxy-Authorization", "proxy-connection", "Forwarded", "X-Forwarded-For", "Via"]
)
def test_headers_meant_for_a_proxy_are_never_sent(serve, transports, name) -> None:
    proxy = serve(respond_with(200))
    resolver = CountingResolver([FAKE_PUBLIC_IP])
    transport = transports(guard=URLGuard(resolver=resolver), proxy=proxy.url(path=""))
    result = transport.post("http://hooks.test/path", b"{}", {name: "Basic eDp5"})
    assert result.error == f"blocked: headers meant for a proxy are never sent: {name}"
    assert proxy.connections == 0


def test_an_operators_session_may_still_carry_proxy_credentials(serve, transports) -> None:
    import requests

    proxy = serve(respond_with(200))
    session = requests.Session()
    session.headers["Proxy-Authorization"] = "Basic b3A6cw=="
    transport = transports(
        guard=URLGuard(resolver=CountingResolver([FAKE_PUBLIC_IP])),
        proxy=proxy.url(path=""),
        session=session,
    )
    assert post(transport, "http://hooks.test/path").error == ""
    assert proxy.requests[0].headers["proxy-authorization"] == "Basic b3A6cw=="


# -- TLS ------------------------------------------------------------------------------------------


def test_tls_uses_the_url_host_name_for_sni_and_verification(
    serve, transports, certificates
) -> None:
    server_names: list[str | None] = []
    server = tls_server(serve, certificates["hooks.test"], server_names)
    resolver = CountingResolver(["127.0.0.1"])
    transport = transports(
        guard=URLGuard(LOOPBACK, resolver=resolver), ca_certs=str(certificates["ca"])
    )

    result = post(transport, server.url(host="hooks.test", scheme="https"))
    assert (result.status_code, result.body, result.error) == (200, b"secure", "")
    assert server_names == ["hooks.test"]
    assert resolver.calls == ["hooks.test"]


def test_tls_certificate_for_another_name_is_refused(serve, transports, certificates) -> None:
    server = tls_server(serve, certificates["other.test"], [])
    transport = transports(
        guard=URLGuard(LOOPBACK, resolver=CountingResolver(["127.0.0.1"])),
        ca_certs=str(certificates["ca"]),
    )

    result = post(transport, server.url(host="hooks.test", scheme="https"))
    assert result.status_code is None
    assert result.error.startswith("TLS error: ")
    assert "hooks.test" in result.error
    assert server.requests == []
