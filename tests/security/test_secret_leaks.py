"""No secret in clear anywhere it could leak: database rows, Redis, logs, admin pages, errors, reprs.

One fixture builds a busy installation (endpoints with rotated secrets and a credential header,
successful, failing and broken deliveries, inbound calls good and forged, a re-encryption) while
capturing every log record; each test then scans one surface for every form of every secret.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import logging
import time
import zlib
from collections.abc import Iterable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings

import django_hooks
from django_hooks.core.credentials import BasicAuth, ClientCertificate
from django_hooks.core.errors import InvalidSignature
from django_hooks.core.signing import Signer
from django_hooks.exceptions import DecryptionError
from django_hooks.inbound.verifiers import get_verifier
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, InboundWebhook
from django_hooks.outbound import client
from django_hooks.testing import drain
from tests.outbound.test_receiver_credentials import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.portal.conftest import get_pages
from tests.receiver import Reply
from tests.testapp import views

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]

HEADER_CREDENTIAL = "Bearer tok_live_9f8e7d6c5b4a39281706"
API_KEY_HEADER = "key_live_Mn8Bv7Cx6Za5Sd4Fg3"
BASIC_PASSWORD = "pw_live_Qa1Ws2Ed3Rf4Tg5Yh"
BEARER_TOKEN = "tok_live_Uj7Ik8Ol9Pa0Sd1Fg2"
API_BEARER_TOKEN = "tok_live_Zx3Cv4Bn5Mq6Wr7Ty"
HOOKS = {"ALLOWED_NETWORKS": ["127.0.0.0/8"], "RETRY_SCHEDULE": [0], "TIMEOUT": 2}


def forms_of(secret: str) -> set[str]:
    """The spellings in which a secret could leak: as is, without its prefix, its key bytes."""
    found = {secret}
    if secret.startswith(("whsec_", "whsk_")):
        key_b64 = secret.removeprefix("whsec_").removeprefix("whsk_")
        found |= {key_b64, key_b64.rstrip("=")}
        with contextlib.suppress(ValueError):
            key = base64.b64decode(key_b64, validate=True)
            found |= {key.hex(), base64.urlsafe_b64encode(key).decode()}
    return {form for form in found if len(form) >= 12}


class Secrets:
    def __init__(self) -> None:
        self.values: set[str] = set()
        self.command_output = ""

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            self.values |= forms_of(secret)

    def assert_absent(self, surface: str, texts: Iterable[str | bytes]) -> int:
        """Fail naming the surface and the secret if any text holds one; return texts scanned."""
        count = 0
        for text in texts:
            count += 1
            haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            for secret in self.values:
                assert secret not in haystack, f"{surface} leaks a secret ({secret[:6]}…)"
        assert count, f"nothing scanned on {surface}"
        return count


def client_certificate() -> tuple[str, str]:
    """A self-signed certificate and its private key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leak-test client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem


def key_forms(pem: str) -> list[str]:
    """A PEM key as a whole and each of its base64 lines."""
    return [pem, *(line for line in pem.splitlines() if not line.startswith("-----"))]


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    server = OAuthServer()
    yield server
    server.close()


@pytest.fixture
def world(receiver, caplog, superuser_client, oauth) -> Iterator[Secrets]:
    caplog.set_level(logging.DEBUG)
    secrets = Secrets()
    secrets.add(views.SECRET, views.OLD_SECRET, views.GITHUB_SECRET)
    with override_settings(DJANGO_HOOKS=HOOKS):
        ok = Endpoint.objects.create(
            url=receiver.url("/ok"), headers={"Authorization": HEADER_CREDENTIAL}
        )
        secrets.add(ok.secret, ok.rotate_secret(), HEADER_CREDENTIAL)
        # A rotation through the API with an Idempotency-Key: its stored response holds the
        # new secret (sealed), and a replay returns it again.
        created = superuser_client.post(
            "/api/hooks/endpoints/",
            {"url": receiver.url("/api-made")},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="leak-create",
        )
        assert created.status_code == 201, created.content
        api_made = Endpoint.objects.get(pk=created.json()["id"])
        rotated = superuser_client.post(
            f"/api/hooks/endpoints/{api_made.pk}/rotate-secret/",
            {},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="leak-rotate",
        )
        assert rotated.status_code == 200, rotated.content
        secrets.add(api_made.secret, rotated.json()["secret"])
        # An Ed25519 endpoint, its key rotated through the API: only public keys may show.
        signed = superuser_client.post(
            "/api/hooks/endpoints/",
            {"url": receiver.url("/v1a"), "signing_scheme": "ed25519"},
            content_type="application/json",
        )
        assert signed.status_code == 201, signed.content
        rotated_key = superuser_client.post(
            f"/api/hooks/endpoints/{signed.json()['id']}/rotate-signing-key/",
            {},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="leak-rotate-key",
        )
        assert rotated_key.status_code == 200, rotated_key.content
        v1a = Endpoint.objects.get(pk=signed.json()["id"])
        assert len(v1a.live_signing_keys()) == 2
        secrets.add(*v1a.live_signing_keys())
        failing = Endpoint.objects.create(url=receiver.url("/fail"), description="failing")
        secrets.add(failing.secret)
        receiver.script("/fail", Reply(500, body=b"nope"), Reply(500, body=b"nope"))
        broken = Endpoint.objects.create(url=receiver.url("/broken"))
        secrets.add(broken.secret)
        # Receiver credentials of every kind, and a custom header value: encrypted at rest,
        # never shown. The OAuth2 one fetches a real token (a secret too) and meets a 401.
        certificate, private_key = client_certificate()
        basic = BasicAuth("leak-user", BASIC_PASSWORD)
        credentialed = [
            Endpoint.objects.create(
                url=receiver.url("/basic"), auth=basic, headers={"X-Api-Key": API_KEY_HEADER}
            ),
            Endpoint.objects.create(
                url=receiver.url("/bearer"), auth={"kind": "bearer", "token": BEARER_TOKEN}
            ),
            Endpoint.objects.create(
                url=oauth.url("/hook"),
                auth={
                    "kind": "oauth2",
                    "token_url": oauth.url("/token"),
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "scope": "webhooks",
                },
            ),
            Endpoint.objects.create(
                url=receiver.url("/mtls"), auth=ClientCertificate(certificate, private_key)
            ),
        ]
        secrets.add(
            BASIC_PASSWORD,
            BEARER_TOKEN,
            CLIENT_SECRET,
            API_KEY_HEADER,
            basic.header().removeprefix("Basic "),
            *key_forms(private_key),
        )
        for endpoint in credentialed:
            secrets.add(endpoint.secret)
        # Through the API, owned by the superuser: its list and detail responses are scanned.
        made = superuser_client.post(
            "/api/hooks/endpoints/",
            {
                "url": receiver.url("/api-auth"),
                "headers": {"X-Api-Key": API_KEY_HEADER},
                "auth": {"kind": "bearer", "token": API_BEARER_TOKEN},
            },
            content_type="application/json",
        )
        assert made.status_code == 201, made.content
        secrets.add(API_BEARER_TOKEN, Endpoint.objects.get(pk=made.json()["id"]).secret)
        # A stored secret no key can read: the attempt error and the log must still be clean.
        Endpoint.objects.filter(pk=broken.pk).update(secret_ciphertext="gAAAAABnot-a-token")
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
        oauth.revoke_all()  # the cached token now meets a 401: fetched again
        django_hooks.send_event("order.paid", {"id": 2})
        drain()
        assert len(oauth.token_requests) == 2
        secrets.add(*(header.removeprefix("Bearer ") for header in oauth.hooks))

        http = Client()
        body = b'{"type": "order.paid", "data": {"id": 7}}'
        forged = "whsec_" + base64.b64encode(bytes([9]) * 32).decode()
        for key in (views.SECRET, forged):  # one genuine call, one forged
            # One clock read: the signed timestamp and the sent one must be the same second.
            timestamp = int(time.time())
            signature = Signer([key]).header("msg_leak", timestamp, body)
            http.post(
                "/hooks/standard/",
                body,
                content_type="application/json",
                HTTP_WEBHOOK_ID="msg_leak",
                HTTP_WEBHOOK_TIMESTAMP=str(timestamp),
                HTTP_WEBHOOK_SIGNATURE=signature,
            )
        assert InboundWebhook.objects.count() == 1
        output = io.StringIO()
        with pytest.raises(CommandError) as refused:  # the broken endpoint is reported
            call_command("hooks_reencrypt", stdout=output)
        secrets.command_output = f"{output.getvalue()} {refused.value}"
    yield secrets


def test_database_rows(world: Secrets) -> None:
    def rows() -> Iterator[str]:
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
                for row in cursor.fetchall():
                    yield " ".join(
                        bytes(v).decode("utf-8", "replace")
                        if isinstance(v, bytes | memoryview)
                        else str(v)
                        for v in row
                    )

    # Custom header values are encrypted like signing secrets and credentials.
    assert world.assert_absent("database rows", rows()) > 10


def test_redis(world: Secrets, redis) -> None:
    def values() -> Iterator[bytes]:
        for key in redis.keys("*"):
            kind = redis.type(key)
            if kind == b"hash":
                raw = list(redis.hgetall(key).values())
            elif kind == b"string":
                raw = [redis.get(key)]
            elif kind in (b"list",):
                raw = redis.lrange(key, 0, -1)
            elif kind in (b"set",):
                raw = list(redis.smembers(key))
            elif kind == b"zset":
                raw = redis.zrange(key, 0, -1)
            else:
                continue
            for value in raw:
                yield key + b" " + value
                with contextlib.suppress(zlib.error):
                    yield zlib.decompress(value)  # RQ compresses job data

    world.assert_absent("Redis", values())


def test_logs(world: Secrets, caplog) -> None:
    records = caplog.get_records("setup")  # the fixture's work
    assert any(r.levelno >= logging.ERROR for r in records), "the broken secret was not logged"
    assert any(r.name.startswith("urllib3") for r in records), "DEBUG records were not captured"
    texts = []
    for record in records:
        texts.append(logging.Formatter(logging.BASIC_FORMAT).format(record))
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(logging.Formatter().formatException(record.exc_info))
    world.assert_absent("logs", texts)


def test_delivery_records(world: Secrets) -> None:
    attempts = list(DeliveryAttempt.objects.all())
    assert any("[hidden]" in str(a.request_headers) for a in attempts)
    assert any("internal error: DecryptionError" in a.error for a in attempts)
    texts = [
        f"{a.request_headers} {a.response_headers} {a.response_body} {a.error}" for a in attempts
    ]
    texts += [d.last_error for d in Delivery.objects.all()]
    world.assert_absent("delivery attempts", texts)


def registered_models() -> list[type]:
    return [
        model
        for model in apps.get_app_config("django_hooks").get_models()
        if model in admin.site._registry
    ]


def test_every_admin_list_and_change_page(world: Secrets, superuser_client) -> None:
    pages = []
    models = registered_models()
    assert {Endpoint, Event, Delivery, InboundWebhook} <= set(models)
    for model in models:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        urls = [base, *(f"{base}{obj.pk}/change/" for obj in model._default_manager.all()[:20])]
        for url in urls:
            response = superuser_client.get(url)
            assert response.status_code == 200, url
            pages.append(url + " " + response.content.decode())
    # The endpoint's own form shows its extra headers so they can be edited; nothing else may.
    # (credentials are write-only there: never rendered back).
    world_without_header = Secrets()
    world_without_header.values = (
        world.values - forms_of(HEADER_CREDENTIAL) - forms_of(API_KEY_HEADER)
    )
    endpoint_pages = [p for p in pages if "/endpoint/" in p.split(" ", 1)[0]]
    other_pages = [p for p in pages if p not in endpoint_pages]
    world_without_header.assert_absent("endpoint admin pages", endpoint_pages)
    world.assert_absent("admin pages", other_pages)


#: REST API list routes (relative to the API root) to scan once ``django_hooks.api`` exists.
API_LIST_PATHS = ["endpoints/", "events/", "deliveries/", "event-types/"]


def test_api_list_responses(world: Secrets, superuser_client) -> None:
    try:
        from django_hooks.api import urls as api_urls  # noqa: F401
    except ImportError:
        pytest.skip("the REST API is not installed in this build")
    root = "/api/hooks/"  # where the project's URLconf includes django_hooks.api.urls
    texts = []
    for path in API_LIST_PATHS:
        response = superuser_client.get(root + path)
        assert response.status_code == 200, path
        texts.append(response.content.decode())
    listed = superuser_client.get(root + "endpoints/").json()["results"]
    assert any(e["auth"] == {"kind": "bearer"} for e in listed), "no credentials were listed"
    for endpoint in listed:  # and each endpoint's own page
        response = superuser_client.get(f"{root}endpoints/{endpoint['id']}/")
        assert response.status_code == 200
        texts.append(response.content.decode())
    world.assert_absent("API responses", texts)


def test_every_customer_portal_page(world: Secrets, superuser_client) -> None:
    """Every portal page but the reveal and rotate answers, for an owner of every endpoint."""
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    owner = get_user_model().objects.get(username="security-admin")
    Endpoint.objects.update(
        owner_content_type=ContentType.objects.get_for_model(owner), owner_id=str(owner.pk)
    )
    paths = get_pages(
        Endpoint.objects.values_list("pk", flat=True),
        Delivery.objects.values_list("pk", flat=True),
    )
    texts = []
    for path in paths:
        response = superuser_client.get("/webhooks/" + path)
        assert response.status_code == 200, path
        texts.append(f"{path} {response.content.decode()}")
    assert len(texts) > 30
    world.assert_absent("customer portal pages", texts)


def test_the_portal_credentials_form_never_shows_a_secret_back(
    world: Secrets, superuser_client
) -> None:
    """Secrets typed into the portal's credentials form, refused with an error or saved: the
    answer and the pages after it hold none of them (nor the stored ones)."""
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    owner = get_user_model().objects.get(username="security-admin")
    Endpoint.objects.update(
        owner_content_type=ContentType.objects.get_for_model(owner), owner_id=str(owner.pk)
    )
    typed = ["pw_typed_Lk9Jh8Gf7Ds6", "key_typed_Po0Iu9Yt8Re7"]
    world.add(*typed)
    _, other_key = client_certificate()
    world.add(*key_forms(other_key))
    texts = []
    with override_settings(DJANGO_HOOKS=HOOKS):
        for endpoint in Endpoint.objects.all():
            path = f"/webhooks/{endpoint.pk}/credentials/"
            names = {f"header_{i}_name": n for i, n in enumerate(sorted(endpoint.headers))}
            refused = [
                # a secret with a missing part, and a header that cannot be sent
                {"credentials_kind": "basic", "credentials_password": typed[0]},
                {"new_0_name": "Bad Name", "new_0_value": typed[1]},
                {"credentials_kind": "mtls", "credentials_private_key": other_key},
            ]
            for data in refused:
                response = superuser_client.post(path, {**names, **data})
                assert response.status_code == 400, (path, data)
                texts.append(f"{path} {response.content.decode()}")
        endpoint = Endpoint.objects.filter(auth_kind="basic").get()
        names = {f"header_{i}_name": n for i, n in enumerate(sorted(endpoint.headers))}
        saved = superuser_client.post(
            f"/webhooks/{endpoint.pk}/credentials/",
            {
                **names,
                "credentials_kind": "basic",
                "credentials_username": "leak-user",
                "credentials_password": typed[0],
                "new_0_name": "X-Typed",
                "new_0_value": typed[1],
            },
        )
        assert saved.status_code == 302, saved.content.decode()[-2000:]
        for page in ("", "credentials/"):
            texts.append(superuser_client.get(f"/webhooks/{endpoint.pk}/{page}").content.decode())
    assert Endpoint.objects.get(pk=endpoint.pk).headers["X-Typed"] == typed[1]
    world.assert_absent("the portal's credentials form", texts)


def test_exception_messages(world: Secrets) -> None:
    texts = [world.command_output]
    endpoint = Endpoint.objects.first()
    secret = endpoint.secret
    # A wrong key: the error says what to do, not what it tried.
    with override_settings(
        DJANGO_HOOKS={**HOOKS, "ENCRYPTION_KEYS": [base64.urlsafe_b64encode(bytes(32)).decode()]}
    ):
        with pytest.raises(DecryptionError) as excinfo:
            Endpoint.objects.get(pk=endpoint.pk).secret  # noqa: B018
        texts.append(f"{excinfo.value!s} {excinfo.value!r}")
    # An invalid secret offered to an endpoint is not echoed back.
    bad = secret[:-3] + "!!!"
    world.add(bad)
    with pytest.raises(ValidationError) as excinfo:
        endpoint.secret = bad
    texts.append(f"{excinfo.value!s} {excinfo.value!r}")
    # Forged signatures: the reason names neither the secret nor the expected signature.
    for provider in ("standard", "github", "stripe", "shopify", "slack"):
        with pytest.raises(InvalidSignature) as sig:
            get_verifier(provider).verify(b"{}", {}, [views.SECRET])
        texts.append(f"{sig.value!s} {sig.value!r} {sig.value.reason}")
    world.assert_absent("exception messages", texts)


def test_reprs(world: Secrets) -> None:
    objects: list[object] = []
    for model in (Endpoint, Event, Delivery, DeliveryAttempt, InboundWebhook):
        objects += list(model.objects.all())
    endpoint = Endpoint.objects.first()
    objects += [Signer(endpoint.live_secrets()), client.url_guard(), client.transport()]
    objects += [get_verifier(p) for p in ("standard", "github", "stripe", "shopify", "slack")]
    world.assert_absent("repr() and str()", (f"{obj!r} {obj!s}" for obj in objects))
