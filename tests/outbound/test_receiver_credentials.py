"""Receiver credentials per endpoint, against real local servers: an OAuth2 token endpoint that
issues and checks tokens, receivers that demand Basic or Bearer, and a TLS receiver that demands
a client certificate. Also: what is stored, logged and shown of them."""

from __future__ import annotations

import base64
import importlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.apps import apps
from django.db import connection

import django_hooks
from django_hooks.core.credentials import (
    BasicAuth,
    BearerToken,
    ClientCertificate,
    OAuth2ClientCredentials,
    from_dict,
)
from django_hooks.exceptions import DecryptionError, EndpointValidationError, InvalidCredentials
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.outbound import client, credentials
from django_hooks.testing import drain
from tests.outbound.servers import CountingResolver, tls_server
from tests.receiver import hooks

CLIENT_ID, CLIENT_SECRET = "shop-client", "cs_live_Zq8w1Xy2Vb3Nm4Lk5Jh6"


class OAuthServer:
    """A client-credentials token endpoint (``/token``) and the resource it protects (``/hook``,
    which answers 401 to any token it did not issue or has revoked)."""

    def __init__(self, *, expires_in: int = 3600) -> None:
        self.token_requests: list[dict[str, str]] = []
        self.hooks: list[str] = []  # the Authorization of every POST to /hook
        self.valid: set[str] = set()
        self.expires_in = expires_in
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/token":
                    self._answer(*server.token(self.headers.get("authorization", ""), body))
                else:
                    with server._lock:
                        authorization = self.headers.get("authorization", "")
                        server.hooks.append(authorization)
                        ok = authorization.removeprefix("Bearer ") in server.valid
                    self._answer(204 if ok else 401, {})

            def _answer(self, status: int, payload: dict[str, object]) -> None:
                data = json.dumps(payload).encode() if payload else b""
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, authorization: str, body: bytes) -> tuple[int, dict[str, object]]:
        form = dict(urllib.parse.parse_qsl(body.decode()))
        with self._lock:
            self.token_requests.append(form)
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if authorization != f"Basic {expected}":
                return 401, {"error": "invalid_client"}
            if form.get("grant_type") != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            token = f"at_{len(self.token_requests)}_Rt7Yh3Kp"
            self.valid.add(token)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": form.get("scope", ""),
        }

    def revoke_all(self) -> None:
        with self._lock:
            self.valid.clear()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    server = OAuthServer()
    yield server
    server.close()


def oauth2(server: OAuthServer, **overrides: str) -> OAuth2ClientCredentials:
    parts = {
        "token_url": server.url("/token"),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "webhooks:write",
        **overrides,
    }
    return OAuth2ClientCredentials(**parts)


# -- OAuth2 client credentials ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_one_token_serves_every_attempt_in_flight(oauth) -> None:
    with hooks(CONCURRENCY=8):
        endpoint = Endpoint.objects.create(url=oauth.url("/hook"), auth=oauth2(oauth))
        for number in range(12):
            django_hooks.send_event("order.paid", {"id": number})
        drain()
    assert Delivery.objects.filter(status="succeeded").count() == 12
    # Fetched once for twelve attempts on eight threads, with the grant and the scope.
    assert oauth.token_requests == [{"grant_type": "client_credentials", "scope": "webhooks:write"}]
    assert set(oauth.hooks) == {"Bearer at_1_Rt7Yh3Kp"}
    # The attempt log keeps neither the token nor the header's value.
    stored = [
        a.request_headers for a in DeliveryAttempt.objects.filter(delivery__endpoint=endpoint)
    ]
    assert all(headers["Authorization"] == "[hidden]" for headers in stored)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_a_refused_token_is_fetched_again_once(oauth) -> None:
    with hooks():
        Endpoint.objects.create(url=oauth.url("/hook"), auth=oauth2(oauth))
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
        oauth.revoke_all()  # the receiver forgets its tokens: the cached one now gets 401
        django_hooks.send_event("order.paid", {"id": 2})
        drain()
    assert len(oauth.token_requests) == 2
    assert oauth.hooks == ["Bearer at_1_Rt7Yh3Kp", "Bearer at_1_Rt7Yh3Kp", "Bearer at_2_Rt7Yh3Kp"]
    assert Delivery.objects.filter(status="succeeded").count() == 2
    # One attempt each: the second POST is part of the attempt that met the 401.
    assert list(Delivery.objects.values_list("attempts", flat=True)) == [1, 1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_a_fresh_token_refused_is_not_fetched_again(oauth, monkeypatch) -> None:
    monkeypatch.setattr(oauth, "valid", set())  # /hook refuses every token, even new ones
    original = oauth.token

    def issue_unaccepted(authorization: str, body: bytes) -> tuple[int, dict[str, object]]:
        status, payload = original(authorization, body)
        oauth.valid.clear()
        return status, payload

    monkeypatch.setattr(oauth, "token", issue_unaccepted)
    with hooks(RETRY_SCHEDULE=[]):
        Endpoint.objects.create(url=oauth.url("/hook"), auth=oauth2(oauth))
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
    assert len(oauth.token_requests) == 1 and len(oauth.hooks) == 1
    assert Delivery.objects.get().last_error == "HTTP 401"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_a_token_refused_fails_the_attempts_without_asking_for_each(oauth) -> None:
    with hooks(RETRY_SCHEDULE=[], CONCURRENCY=4):
        Endpoint.objects.create(
            url=oauth.url("/hook"), auth=oauth2(oauth, client_secret="cs_wrong_Aa1Bb2Cc3Dd4")
        )
        for number in range(6):
            django_hooks.send_event("order.paid", {"id": number})
        drain()
    assert len(oauth.token_requests) == 1, "a failure is remembered for the attempts in flight"
    assert oauth.hooks == []  # nothing was sent without a token
    errors = set(Delivery.objects.values_list("last_error", flat=True))
    assert errors == {"OAuth2 token request failed: HTTP 401 (invalid_client)"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_an_expired_token_is_fetched_again(oauth) -> None:
    oauth.expires_in = credentials.EXPIRY_MARGIN + 1  # good for one second here
    with hooks():
        Endpoint.objects.create(url=oauth.url("/hook"), auth=oauth2(oauth))
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
        time.sleep(1.1)
        oauth.expires_in = 3600
        django_hooks.send_event("order.paid", {"id": 2})
        drain()
        django_hooks.send_event("order.paid", {"id": 3})
        drain()
    assert len(oauth.token_requests) == 2
    assert oauth.hooks == ["Bearer at_1_Rt7Yh3Kp", "Bearer at_2_Rt7Yh3Kp", "Bearer at_2_Rt7Yh3Kp"]
    assert Delivery.objects.filter(status="succeeded").count() == 3


def test_the_token_request_goes_through_the_ssrf_guard(oauth) -> None:
    """Saved while allowed, refused once the network no longer is: the guard vets the address
    the token request connects to, at send time."""
    with hooks():
        transport = client.transport()
        auth = oauth2(oauth)
    with hooks(ALLOWED_NETWORKS=[]):
        guarded = client.transport()
        with pytest.raises(credentials.TokenError) as refused:
            credentials.fetch_token(auth, guarded)
    assert "blocked" in str(refused.value) and "loopback" in str(refused.value)
    assert oauth.token_requests == []
    assert credentials.fetch_token(auth, transport)[0] == "at_1_Rt7Yh3Kp"


@pytest.mark.django_db
def test_a_private_token_url_is_refused_on_save() -> None:
    endpoint = Endpoint(
        url="https://example.com/hook",
        auth=OAuth2ClientCredentials("http://169.254.169.254/token", CLIENT_ID, CLIENT_SECRET),
    )
    with pytest.raises(EndpointValidationError) as refused:
        endpoint.save()
    assert "token_url" in str(refused.value.message_dict["auth"])
    assert CLIENT_SECRET not in str(refused.value)


# -- Basic and Bearer ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_basic_and_bearer_are_sent(receiver) -> None:
    with hooks():
        Endpoint.objects.create(
            url=receiver.url("/basic"), auth=BasicAuth("acme", "pw_Hj7Kl9Mn0Pq1")
        )
        Endpoint.objects.create(
            url=receiver.url("/bearer"), auth={"kind": "bearer", "token": "tok_Qw3Er5Ty7Ui9"}
        )
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
    [basic] = receiver.to("/basic")
    [bearer] = receiver.to("/bearer")
    expected = base64.b64encode(b"acme:pw_Hj7Kl9Mn0Pq1").decode()
    assert basic.headers["authorization"] == f"Basic {expected}"
    assert bearer.headers["authorization"] == "Bearer tok_Qw3Er5Ty7Ui9"
    for attempt in DeliveryAttempt.objects.all():
        assert attempt.request_headers["Authorization"] == "[hidden]"


# -- mTLS ------------------------------------------------------------------------------------------


CA_PATH = ""  # the test CA, for ca_session (set by the test)


def ca_session() -> requests.Session:
    session = requests.Session()
    session.verify = CA_PATH
    return session


def split_pem(path: Path) -> tuple[str, str]:
    text = path.read_text()
    start = text.index("-----BEGIN PRIVATE KEY-----")
    return text[:start], text[start:]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_a_client_certificate_is_presented_per_endpoint(serve, certificates, monkeypatch) -> None:
    server = tls_server(serve, certificates["hooks.test"], [], client_ca=certificates["ca"])
    monkeypatch.setattr(f"{__name__}.CA_PATH", str(certificates["ca"]))
    certificate, key = split_pem(certificates["client"])
    url = server.url(host="hooks.test", scheme="https")
    session = f"{__name__}.ca_session"
    with (
        hooks(SESSION=session, RETRY_SCHEDULE=[]),
        client.use_resolver(CountingResolver(["127.0.0.1"])),
    ):
        with_cert = Endpoint.objects.create(
            url=url, event_types=["order.paid"], auth=ClientCertificate(certificate, key)
        )
        without = Endpoint.objects.create(url=url, event_types=["order.refunded"])
        django_hooks.send_event("order.paid", {"id": 1})
        django_hooks.send_event("order.paid", {"id": 2})
        django_hooks.send_event("order.refunded", {"id": 3})
        drain()
    assert set(Delivery.objects.filter(endpoint=with_cert).values_list("status", flat=True)) == {
        "succeeded"
    }
    refused = Delivery.objects.get(endpoint=without)
    assert refused.status == "failed" and refused.last_status_code is None
    assert len(server.requests) == 2  # only the certificate's requests reached the handler
    public = Endpoint.objects.get(pk=with_cert.pk).auth_public
    assert public["kind"] == "mtls" and public["subject"] == "CN=client"
    assert "PRIVATE KEY" not in json.dumps(public)


def test_a_key_that_is_not_the_certificates_is_refused(certificates) -> None:
    certificate, _key = split_pem(certificates["client"])
    _other_certificate, other_key = split_pem(certificates["other.test"])
    with pytest.raises(InvalidCredentials, match="does not belong to the certificate"):
        ClientCertificate(certificate, other_key)


# -- storage and validation ------------------------------------------------------------------------


@pytest.mark.django_db
def test_credentials_and_header_values_are_encrypted_at_rest() -> None:
    with hooks():
        endpoint = Endpoint.objects.create(
            url="https://example.com/hook",
            headers={"X-Api-Key": "key_Lp0Ok9Ij8Uh7"},
            auth=BasicAuth("acme", "pw_Hj7Kl9Mn0Pq1"),
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM django_hooks_endpoint")
        row = " ".join(map(str, cursor.fetchone()))
    assert "key_Lp0Ok9Ij8Uh7" not in row and "pw_Hj7Kl9Mn0Pq1" not in row
    assert "acme" in row  # the username is not a secret: lists and responses show it
    fresh = Endpoint.objects.get(pk=endpoint.pk)
    assert fresh.headers == {"X-Api-Key": "key_Lp0Ok9Ij8Uh7"}
    assert fresh.auth == BasicAuth("acme", "pw_Hj7Kl9Mn0Pq1")
    assert "pw_" not in repr(fresh.auth)
    fresh.auth = None
    fresh.save()
    assert Endpoint.objects.get(pk=endpoint.pk).auth is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"kind": "digest"}, "kind must be one of basic, bearer, oauth2, mtls"),
        ({"kind": "basic", "username": "a"}, "basic: password is required"),
        ({"kind": "basic", "username": "a:b", "password": "p"}, "may not contain a colon"),
        ({"kind": "bearer", "token": "x", "password": "p"}, "unexpected 'password'"),
        ({"kind": "bearer", "token": "a\r\nX-Evil: 1"}, "line breaks"),
        (
            {"kind": "oauth2", "token_url": "ftp://x/", "client_id": "c", "client_secret": "s"},
            "token_url must be an http",
        ),
        ({"kind": "mtls", "certificate": "x", "private_key": "y"}, "not a PEM certificate"),
        ("basic", "Must be an object"),
    ],
)
def test_bad_credentials_name_what_is_wrong(value, message) -> None:
    with pytest.raises(InvalidCredentials, match=message):
        from_dict(value)


@pytest.mark.django_db
def test_authorization_cannot_also_be_a_custom_header() -> None:
    with pytest.raises(EndpointValidationError, match="set by the endpoint's credentials"):
        Endpoint.objects.create(
            url="https://example.com/hook",
            headers={"Authorization": "Basic eA=="},
            auth=BearerToken("tok_Qw3Er5Ty7Ui9"),
        )


@pytest.mark.django_db
def test_the_migration_encrypts_headers_stored_in_clear() -> None:
    migration = importlib.import_module("django_hooks.migrations.0009_endpoint_auth")
    endpoint = Endpoint.objects.create(url="https://example.com/hook")
    with connection.cursor() as cursor:  # as a row written before 0010 holds them
        cursor.execute(
            "UPDATE django_hooks_endpoint SET headers = %s WHERE id = %s",
            [json.dumps({"X-Api-Key": "key_Zx9Cv8Bn7"}), endpoint.pk],
        )
    assert Endpoint.objects.get(pk=endpoint.pk).headers == {"X-Api-Key": "key_Zx9Cv8Bn7"}
    migration.encrypt_headers(apps, None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers FROM django_hooks_endpoint WHERE id = %s", [endpoint.pk])
        [raw] = cursor.fetchone()
    assert "key_Zx9Cv8Bn7" not in str(raw)
    assert Endpoint.objects.get(pk=endpoint.pk).headers == {"X-Api-Key": "key_Zx9Cv8Bn7"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_unreadable_headers_fail_their_endpoint_alone(receiver) -> None:
    with hooks(RETRY_SCHEDULE=[]):
        broken = Endpoint.objects.create(url=receiver.url("/broken"), headers={"X-A": "1"})
        Endpoint.objects.create(url=receiver.url("/fine"), headers={"X-A": "2"})
        with connection.cursor() as cursor:  # a token no configured key can read
            cursor.execute(
                "UPDATE django_hooks_endpoint SET headers = %s WHERE id = %s",
                [json.dumps("gAAAAABnot-a-token"), broken.pk],
            )
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
        assert [r.headers["x-a"] for r in receiver.to("/fine")] == ["2"]
        assert receiver.to("/broken") == []
        failed = Delivery.objects.get(endpoint=broken)
        assert failed.status == "failed" and "DecryptionError" in failed.last_error
        loaded = Endpoint.objects.get(pk=broken.pk)  # lists and the admin still load it
        with pytest.raises(DecryptionError):
            loaded.save()
