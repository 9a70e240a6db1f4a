"""Standard Webhooks v1a (Ed25519) signing of outbound webhooks: keys encrypted at rest, the
signing scheme per endpoint (alone or beside v1), rotation with a grace period. Each delivery is
checked with our own inbound verifier, with ``cryptography`` directly, and (for v1) with the
reference library."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import django_hooks
from django_hooks.core import signing
from django_hooks.core.errors import SignatureMismatch
from django_hooks.exceptions import EndpointValidationError
from django_hooks.inbound.verifiers import StandardVerifier
from django_hooks.models import Endpoint
from django_hooks.testing import drain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]


def raw_row(endpoint: Endpoint) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM django_hooks_endpoint WHERE id = %s", [endpoint.pk])
        return " ".join(str(value) for value in cursor.fetchone())


def signatures(request, version: str) -> list[bytes]:
    return [
        base64.b64decode(item.split(",", 1)[1])
        for item in request.headers["webhook-signature"].split(" ")
        if item.split(",", 1)[0] == version
    ]


def verifies_with_cryptography(public_key: str, request) -> bool:
    """Check a v1a signature without our code: the spec's content, Ed25519, the raw key."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    content = (
        f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode()
        + request.body
    )
    for signature in signatures(request, "v1a"):
        try:
            key.verify(signature, content)
        except InvalidSignature:
            continue
        return True
    return False


def deliver_one(receiver, endpoint: Endpoint):
    django_hooks.send_event("order.paid", {"id": 42})
    drain()
    (request,) = receiver.to("/hook")
    return request


def test_an_ed25519_endpoint_gets_a_signing_key_stored_encrypted():
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/hook", signing_scheme="ed25519")
    (signing_key,) = Endpoint.objects.get(pk=endpoint.pk).live_signing_keys()
    assert signing_key.startswith("whsk_")
    assert endpoint.public_key == signing.public_key_for(signing_key)
    assert endpoint.public_key.startswith("whpk_")
    row = raw_row(endpoint)
    assert signing_key not in row and signing_key.removeprefix("whsk_") not in row


def test_an_hmac_endpoint_has_no_signing_key_until_it_needs_one():
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/hook")
    assert endpoint.signing_scheme == "hmac"
    assert endpoint.public_key is None and endpoint.live_signing_keys() == []
    endpoint.signing_scheme = "hmac+ed25519"
    endpoint.save(update_fields=["signing_scheme"])
    reloaded = Endpoint.objects.get(pk=endpoint.pk)
    assert reloaded.public_key is not None and reloaded.public_key == endpoint.public_key


def test_an_unknown_signing_scheme_is_refused_naming_the_field():
    with pytest.raises(EndpointValidationError) as error:
        Endpoint.objects.create(url="http://127.0.0.1:9/hook", signing_scheme="rsa")
    assert "'rsa' is not one of" in error.value.message_dict["signing_scheme"][0]
    assert not Endpoint.objects.exists()


def test_v1a_alone_verifies_with_the_public_key_and_not_the_secret(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url(), signing_scheme="ed25519")
    request = deliver_one(receiver, endpoint)
    header = request.headers["webhook-signature"]
    assert header.startswith("v1a,") and " " not in header and "v1," not in header
    verified = StandardVerifier().verify(request.body, request.headers, [endpoint.public_key])
    assert verified.payload["data"] == {"id": 42}
    assert verifies_with_cryptography(endpoint.public_key, request)
    with pytest.raises(SignatureMismatch):  # no v1 signature: the secret verifies nothing
        StandardVerifier().verify(request.body, request.headers, [endpoint.secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(request.body, request.headers)


def test_both_schemes_during_a_migration(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url(), signing_scheme="hmac+ed25519")
    request = deliver_one(receiver, endpoint)
    assert request.headers["webhook-signature"].startswith("v1,")
    assert len(signatures(request, "v1")) == 1 and len(signatures(request, "v1a")) == 1
    # Receivers not yet moved keep verifying v1 with the reference library...
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["data"] == {"id": 42}
    # ...and moved ones verify v1a holding nothing that could sign.
    StandardVerifier().verify(request.body, request.headers, [endpoint.public_key])
    assert verifies_with_cryptography(endpoint.public_key, request)
    _, stranger = signing.generate_signing_key()
    with pytest.raises(SignatureMismatch):
        StandardVerifier().verify(request.body, request.headers, [stranger])
    assert not verifies_with_cryptography(stranger, request)


def test_rotation_keeps_the_old_key_signing_for_the_grace_period(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url(), signing_scheme="ed25519")
    old_public = endpoint.public_key
    before = timezone.now()
    new_public = endpoint.rotate_signing_key(grace_period=3600)
    reloaded = Endpoint.objects.get(pk=endpoint.pk)
    assert reloaded.public_key == new_public != old_public
    (previous,) = reloaded.previous_public_keys()
    assert previous["public_key"] == old_public
    expires = dt.datetime.fromisoformat(previous["expires_at"])
    assert dt.timedelta(minutes=59) < expires - before <= dt.timedelta(hours=1, seconds=5)
    assert all(key not in raw_row(reloaded) for key in reloaded.live_signing_keys())

    request = deliver_one(receiver, endpoint)
    assert len(signatures(request, "v1a")) == 2
    for public_key in (old_public, new_public):
        StandardVerifier().verify(request.body, request.headers, [public_key])
        assert verifies_with_cryptography(public_key, request)


def test_once_the_grace_period_is_over_only_the_new_key_signs(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url(), signing_scheme="ed25519")
    old_public = endpoint.public_key
    endpoint.rotate_signing_key(grace_period=0)
    assert Endpoint.objects.get(pk=endpoint.pk).previous_public_keys() == []
    request = deliver_one(receiver, endpoint)
    assert len(signatures(request, "v1a")) == 1
    assert not verifies_with_cryptography(old_public, request)
    with pytest.raises(SignatureMismatch):
        StandardVerifier().verify(request.body, request.headers, [old_public])


def test_the_default_grace_period_is_the_secrets_one(settings):
    settings.DJANGO_HOOKS = {**settings.DJANGO_HOOKS, "SECRET_GRACE_PERIOD": 600}
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/hook", signing_scheme="ed25519")
    before = timezone.now()
    endpoint.rotate_signing_key()
    (entry,) = endpoint.previous_signing_keys
    expires = dt.datetime.fromisoformat(entry["expires_at"])
    assert dt.timedelta(minutes=9) < expires - before <= dt.timedelta(minutes=10, seconds=5)
    with pytest.raises(ValueError, match="negative"):
        endpoint.rotate_signing_key(grace_period=-1)


def test_rotating_in_a_loop_keeps_a_bounded_number_of_live_keys():
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/hook", signing_scheme="ed25519")
    for _ in range(12):
        endpoint.rotate_signing_key()
    assert len(endpoint.live_signing_keys()) == 6  # the current key and 5 previous ones


def test_an_hmac_endpoint_that_holds_a_key_still_signs_v1_only(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    endpoint.rotate_signing_key()  # a key made ahead of the switch, public key handed out
    request = deliver_one(receiver, endpoint)
    assert signatures(request, "v1a") == [] and len(signatures(request, "v1")) == 1


# -- the admin ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client_():
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_the_admin_sets_the_scheme_shows_the_public_key_and_rotates(admin_client_):
    from django.contrib.admin.models import LogEntry

    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    change = f"/admin/django_hooks/endpoint/{endpoint.pk}/change/"
    page = admin_client_.get(change).content.decode()
    assert 'name="signing_scheme"' in page and "none until the signing scheme" in page
    from tests.admin.test_console import endpoint_form

    form = endpoint_form(url=endpoint.url, signing_scheme="hmac+ed25519")
    assert admin_client_.post(change, form).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.signing_scheme == "hmac+ed25519"
    first_public = endpoint.public_key
    assert first_public in admin_client_.get(change).content.decode()

    response = admin_client_.post(
        f"/admin/django_hooks/endpoint/{endpoint.pk}/rotate-signing-key/", follow=True
    )
    endpoint.refresh_from_db()
    page = response.content.decode()
    assert endpoint.public_key != first_public
    assert endpoint.public_key in page and first_public in page  # the previous one, in grace
    for signing_key in endpoint.live_signing_keys():  # never shown, anywhere
        assert signing_key.removeprefix("whsk_") not in page
        assert (
            signing_key.removeprefix("whsk_")
            not in admin_client_.get("/admin/django_hooks/endpoint/").content.decode()
        )
    assert LogEntry.objects.filter(change_message="Rotated the Ed25519 signing key.").exists()
    bad = admin_client_.post(change, {**form, "signing_scheme": "rsa"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()


def test_a_django_hooks_receiver_accepts_v1a_with_only_the_public_key(receiver, rf):
    from django.http import HttpResponse

    from django_hooks.inbound import webhook_receiver

    endpoint = Endpoint.objects.create(url=receiver.url(), signing_scheme="ed25519")
    request = deliver_one(receiver, endpoint)
    seen = []

    @webhook_receiver("standard", secret=endpoint.public_key, source="v1a-test")
    def hook(incoming):
        seen.append(incoming.webhook.payload)
        return HttpResponse(status=204)

    headers = {
        f"HTTP_{name.upper().replace('-', '_')}": request.headers[name]
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    call = rf.post("/in/", request.body, content_type="application/json", **headers)
    assert hook(call).status_code == 204 and seen[0]["data"] == {"id": 42}
    forged = rf.post(
        "/in/", request.body.replace(b"42", b"43"), content_type="application/json", **headers
    )
    assert hook(forged).status_code == 401 and len(seen) == 1
