"""requests as the delivery client: mocks see our POSTs, a user's session configures it (proxies,
client certificate, CA bundle, headers), and nothing on that session gets around the guard."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests
from django.test import override_settings
from requests.adapters import HTTPAdapter

import django_hooks
from django_hooks.checks import check_security, check_settings
from django_hooks.core.urlguard import URLGuard
from django_hooks.models import Delivery, Endpoint
from django_hooks.outbound import client
from django_hooks.outbound.transport import BlockedRequest, GuardedAdapter, HTTPResult, Transport
from django_hooks.testing import drain
from tests.outbound.servers import (
    FAKE_PUBLIC_IP,
    LOOPBACK,
    CountingResolver,
    Request,
    respond_with,
    tls_server,
)
from tests.security.corpus import PUBLIC_V4, FakeDNS

PUBLIC_URL = "https://public.attacker.test/hook"  # public in FakeDNS; only mocks answer it


def post(transport: Transport, url: str, body: bytes = b'{"x": 1}') -> HTTPResult:
    return transport.post(url, body, {"Content-Type": "application/json"})


# -- SESSION factories (referenced by dotted path below) ------------------------------------------


def acme_session() -> requests.Session:
    session = requests.Session()
    session.headers["X-Sender"] = "acme"
    return session


def unverified_session() -> requests.Session:
    session = requests.Session()
    session.verify = False
    return session


def not_a_session() -> object:
    return object()


def broken_session() -> requests.Session:
    raise RuntimeError("vault unreachable")


NOT_CALLABLE = "a string"


# -- mocks see deliveries -------------------------------------------------------------------------


@pytest.fixture
def public_dns() -> Iterator[FakeDNS]:
    """Endpoints on public.attacker.test, nothing private allowed: as in production."""
    dns = FakeDNS({"public.attacker.test": [PUBLIC_V4]})
    hooks = {"ALLOWED_NETWORKS": [], "RETRY_SCHEDULE": [], "TIMEOUT": 2}
    with override_settings(DJANGO_HOOKS=hooks), client.use_resolver(dns):
        yield dns


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_responses_sees_a_delivery(public_dns) -> None:
    responses = pytest.importorskip("responses")
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, PUBLIC_URL, status=204)
        Endpoint.objects.create(url=PUBLIC_URL)
        event = django_hooks.send_event("order.paid", {"id": 7})
        drain()
        [call] = mock.calls
    assert call.request.headers["webhook-id"] == event.pk
    assert call.request.headers["webhook-signature"].startswith("v1,")
    assert call.request.headers["user-agent"] == "django-hooks"
    assert b'"id":7' in call.request.body.replace(b" ", b"")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("succeeded", 204)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_requests_mock_sees_a_delivery(public_dns) -> None:
    requests_mock = pytest.importorskip("requests_mock")
    with requests_mock.Mocker() as mock:
        mock.post(PUBLIC_URL, status_code=500, text="down for maintenance")
        Endpoint.objects.create(url=PUBLIC_URL)
        event = django_hooks.send_event("order.paid", {"id": 8})
        drain()
    [request] = mock.request_history
    assert request.headers["webhook-id"] == event.pk
    assert request.json()["data"] == {"id": 8}
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("failed", 500)
    assert delivery.attempt_log.get().response_body == "down for maintenance"


def test_a_mocked_session_still_refuses_what_the_guard_refuses() -> None:
    responses = pytest.importorskip("responses")
    requests_mock = pytest.importorskip("requests_mock")
    with Transport(guard=URLGuard()) as transport:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add(responses.POST, "http://10.0.0.1/hook")
            result = post(transport, "http://10.0.0.1/hook")
            assert len(mock.calls) == 0
        assert result.error == "blocked: 10.0.0.1 is a private address (not in ALLOWED_NETWORKS)"
        with requests_mock.Mocker() as mocker:
            mocker.post("http://169.254.169.254/latest", text="secrets")
            result = post(transport, "http://169.254.169.254/latest")
            assert mocker.call_count == 0
        assert result.error.startswith("blocked: 169.254.169.254")


def test_responses_bodies_are_capped_like_real_ones() -> None:
    responses = pytest.importorskip("responses")
    with Transport(guard=URLGuard(), read_limit=10) as transport:
        with responses.RequestsMock() as mock:
            mock.add(responses.POST, f"https://{FAKE_PUBLIC_IP}/hook", body=b"x" * 1000)
            result = post(transport, f"https://{FAKE_PUBLIC_IP}/hook")
    assert (result.status_code, result.body, result.error) == (200, b"x" * 10, "")


# -- a user's session: what applies --------------------------------------------------------------


def test_session_headers_are_sent_below_the_webhook_headers(serve) -> None:
    server = serve(respond_with(200))
    session = requests.Session()
    session.headers.update({"X-Sender": "acme", "Content-Type": "text/plain"})
    with Transport(guard=URLGuard(LOOPBACK), session=session) as transport:
        assert post(transport, server.url()).status_code == 200
    [request] = server.requests
    assert request.headers["x-sender"] == "acme"
    assert request.headers["content-type"] == "application/json"  # the webhook's own wins
    assert request.headers["user-agent"] == "django-hooks"  # requests' default is not sent
    assert request.headers["accept-encoding"] == "identity"
    assert "connection" not in request.headers


def test_session_proxies_are_used_after_the_target_is_vetted(serve) -> None:
    proxy = serve(respond_with(200, b"via proxy"))
    resolver = CountingResolver([FAKE_PUBLIC_IP])
    session = requests.Session()
    session.proxies = {"http": proxy.url(path="")}
    with Transport(guard=URLGuard(resolver=resolver), session=session) as transport:
        result = post(transport, "http://hooks.test/path")
        assert (result.status_code, result.body) == (200, b"via proxy")
        blocked = post(transport, "http://10.1.2.3/path")
    assert proxy.requests[0].target == "http://hooks.test/path"
    assert resolver.calls == ["hooks.test"]
    assert blocked.error.startswith("blocked: 10.1.2.3 is a private address")
    assert len(proxy.requests) == 1


def test_the_proxy_setting_replaces_the_session_proxies(serve) -> None:
    chosen, ignored = serve(respond_with(200, b"chosen")), serve(respond_with(200, b"ignored"))
    session = requests.Session()
    session.proxies = {"http": ignored.url(path="")}
    guard = URLGuard(resolver=CountingResolver([FAKE_PUBLIC_IP]))
    with Transport(guard=guard, session=session, proxy=chosen.url(path="")) as transport:
        assert post(transport, "http://hooks.test/").body == b"chosen"
    assert ignored.connections == 0


def test_environment_proxies_are_never_used(serve, monkeypatch) -> None:
    target, trap = serve(respond_with(200, b"direct")), serve(respond_with(200, b"trap"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, trap.url(path=""))
    monkeypatch.setenv("NO_PROXY", "")
    session = requests.Session()
    session.trust_env = True  # what the user left on; the transport turns it off
    for made in (
        Transport(guard=URLGuard(LOOPBACK)),
        Transport(guard=URLGuard(LOOPBACK), session=session),
    ):
        with made as transport:
            assert post(transport, target.url()).body == b"direct"
    assert trap.connections == 0
    assert len(target.requests) == 2


def test_session_ca_bundle_is_used_for_verification(serve, certificates) -> None:
    server = tls_server(serve, certificates["hooks.test"], [])
    guard = URLGuard(LOOPBACK, resolver=CountingResolver(["127.0.0.1"]))
    url = server.url(host="hooks.test", scheme="https")
    with Transport(guard=guard) as default:  # certifi's bundle: our test CA is unknown there
        refused = post(default, url)
    session = requests.Session()
    session.verify = str(certificates["ca"])
    with Transport(guard=guard, session=session) as transport:
        accepted = post(transport, url)
    assert refused.error.startswith("TLS error: ") and refused.status_code is None
    assert (accepted.status_code, accepted.body, accepted.error) == (200, b"secure", "")


def test_session_client_certificate_is_presented(serve, certificates) -> None:
    server = tls_server(serve, certificates["hooks.test"], [], client_ca=certificates["ca"])
    guard = URLGuard(LOOPBACK, resolver=CountingResolver(["127.0.0.1"]))
    url = server.url(host="hooks.test", scheme="https")

    anonymous = requests.Session()
    anonymous.verify = str(certificates["ca"])
    with Transport(guard=guard, session=anonymous) as transport:
        refused = post(transport, url)
    assert refused.status_code is None and refused.error, refused
    assert server.requests == []

    session = requests.Session()
    session.verify = str(certificates["ca"])
    session.cert = str(certificates["client"])  # certificate and key in one PEM file
    with Transport(guard=guard, session=session) as transport:
        accepted = post(transport, url)
    assert (accepted.status_code, accepted.body, accepted.error) == (200, b"secure", "")
    assert len(server.requests) == 1


# -- a user's session: what cannot get around the guard --------------------------------------------


def test_adapters_mounted_on_the_session_are_replaced(serve) -> None:
    server = serve(respond_with(200))
    session = requests.Session()
    # A more specific prefix would win in Session.get_adapter: it must not survive.
    session.mount(f"http://127.0.0.1:{server.port}", HTTPAdapter())
    session.mount("http://", HTTPAdapter(max_retries=5))
    with Transport(guard=URLGuard(), session=session) as transport:
        result = post(transport, server.url())
        assert list(session.adapters) == ["https://", "http://"]
        assert all(isinstance(a, GuardedAdapter) for a in session.adapters.values())
    assert result.error == "blocked: 127.0.0.1 is a loopback address (not in ALLOWED_NETWORKS)"
    assert server.connections == 0


def test_dns_rebinding_is_caught_through_a_user_session(serve) -> None:
    server = serve(respond_with(200, b"ok", [("Connection", "close")]))
    resolver = CountingResolver(["127.0.0.1"], ["10.0.0.1"])
    with Transport(guard=URLGuard(LOOPBACK, resolver=resolver), session=acme_session()) as t:
        assert post(t, server.url(host="rebind.test")).status_code == 200
        second = post(t, server.url(host="rebind.test"))
    assert second.error.startswith("blocked: rebind.test resolves to 10.0.0.1, a private address")
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed_through_a_user_session(serve, status) -> None:
    server = serve(respond_with(status, b"moved", [("Location", "/elsewhere")]))
    session = requests.Session()
    session.max_redirects = 30
    with Transport(guard=URLGuard(LOOPBACK), session=session) as transport:
        result = post(transport, server.url("/hook"))
    assert (result.status_code, result.body, result.error) == (status, b"moved", "")
    assert result.headers["location"] == "/elsewhere"
    assert [r.target for r in server.requests] == ["/hook"]


def test_a_session_told_to_follow_redirects_has_every_hop_vetted(serve, transports) -> None:
    # Transport never follows redirects; code that uses its session directly and does still
    # cannot reach a blocked address through one.
    server = serve(respond_with(302, b"", [("Location", "http://169.254.169.254/latest")]))
    session = transports().session
    with pytest.raises(BlockedRequest, match=r"169\.254\.169\.254 is a cloud metadata address"):
        session.post(server.url(), data=b"{}", allow_redirects=True)
    assert len(server.requests) == 1


def test_a_malformed_redirect_location_is_still_the_response(serve, transports) -> None:
    # requests works out the next request even when not following it; an unparsable Location
    # makes that raise, and the response we did get must still be the result.
    server = serve(respond_with(302, b"", [("Location", "http://[::1/x")]))
    result = post(transports(), server.url())
    assert (result.status_code, result.error) == (302, "")
    assert result.headers["location"] == "http://[::1/x"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_tried_once() -> None:
    resolver = CountingResolver(["127.0.0.1"])  # called once per connection attempt
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=5))  # replaced: retries are the schedule's
    with Transport(guard=URLGuard(LOOPBACK, resolver=resolver), session=session) as transport:
        result = post(transport, f"http://down.test:{closed_port()}/hook")
    assert (result.status_code, result.error, result.unreachable) == (
        None,
        "connection refused",
        True,
    )
    assert resolver.calls == ["down.test"]


def test_a_request_the_server_drops_is_sent_once(serve) -> None:
    server = serve(lambda request, conn: False)  # reads the request, closes without answering
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=5))
    with Transport(guard=URLGuard(LOOPBACK), session=session) as transport:
        result = post(transport, server.url())
    assert result.error == "connection closed by the server without a response"
    assert len(server.requests) == 1
    assert server.connections == 1


def test_cookies_from_one_receiver_never_reach_another(serve, transports) -> None:
    setter = serve(respond_with(200, b"", [("Set-Cookie", "session=abc; Path=/")]))
    other = serve(respond_with(200))
    transport = transports()
    post(transport, setter.url())
    post(transport, setter.url())
    post(transport, other.url())
    assert all("cookie" not in r.headers for r in setter.requests + other.requests)
    assert len(transport.session.cookies) == 0


def test_one_transport_serves_many_threads(serve, transports) -> None:
    def respond(request: Request, conn: socket.socket) -> bool:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: "
            + str(len(request.body)).encode()
            + b"\r\n\r\n"
            + request.body
        )
        return True

    server = serve(respond)
    transport = transports(max_connections=16)
    results: list[tuple[bytes, bytes]] = []

    def work(n: int) -> None:
        for i in range(20):
            body = f"{n}-{i}".encode()
            results.append((body, post(transport, server.url(), body).body))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 320
    assert all(sent == echoed for sent, echoed in results)
    assert server.connections <= 16


# -- the SESSION setting --------------------------------------------------------------------------


MODULE = __name__


def test_session_setting_builds_the_workers_session(serve) -> None:
    server = serve(respond_with(200))
    hooks = {"ALLOWED_NETWORKS": LOOPBACK, "SESSION": f"{MODULE}.acme_session"}
    with override_settings(DJANGO_HOOKS=hooks):
        transport = client.transport()
        assert client.transport() is transport  # built once per process
        assert post(transport, server.url()).status_code == 200
        assert isinstance(transport.session.get_adapter(server.url()), GuardedAdapter)
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": LOOPBACK}):
        assert client.transport() is not transport
    assert server.requests[0].headers["x-sender"] == "acme"


def check_ids(session: object) -> list[str]:
    with override_settings(DEBUG=True, DJANGO_HOOKS={"SESSION": session}):
        return sorted(message.id for message in [*check_settings(), *check_security()])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{MODULE}.acme_session", []),
        (acme_session, []),
        (f"{MODULE}.unverified_session", ["django_hooks.W002"]),
        (f"{MODULE}.not_a_session", ["django_hooks.E007"]),
        (f"{MODULE}.broken_session", ["django_hooks.E007"]),
        (f"{MODULE}.NOT_CALLABLE", ["django_hooks.E007"]),
        (f"{MODULE}.missing", ["django_hooks.E007"]),
        ("no_such_module.session", ["django_hooks.E007"]),
    ],
)
def test_session_setting_is_checked(value, expected) -> None:
    assert check_ids(value) == expected


def test_session_check_messages_say_what_is_wrong() -> None:
    with override_settings(DEBUG=True, DJANGO_HOOKS={"SESSION": f"{MODULE}.not_a_session"}):
        [error] = check_settings()
    assert "returned object, not a requests.Session" in error.msg
    assert error.hint
    with override_settings(DEBUG=True, DJANGO_HOOKS={"SESSION": f"{MODULE}.broken_session"}):
        [error] = check_settings()
    assert error.msg == "DJANGO_HOOKS['SESSION'] raised RuntimeError: vault unreachable"
