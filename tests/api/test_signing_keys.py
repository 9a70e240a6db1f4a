"""Ed25519 (v1a) signing through the API: the signing scheme field, the public key action and
rotation; the signing key itself is never served."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from django_hooks.models import Endpoint
from tests.api.conftest import API

pytestmark = pytest.mark.django_db

SETTINGS = {"ALLOWED_NETWORKS": ["127.0.0.0/8"]}


def create(client, **body):
    with override_settings(DJANGO_HOOKS=SETTINGS):
        return client.post(API + "endpoints/", body, format="json")


def assert_no_signing_key(endpoint: Endpoint, *responses) -> None:
    keys = [key.removeprefix("whsk_") for key in endpoint.live_signing_keys()]
    assert keys
    for response in responses:
        body = response.content.decode()
        assert all(key not in body for key in keys)
        assert endpoint.signing_key_ciphertext not in body


def test_the_signing_scheme_is_set_and_the_public_key_served(as_alice):
    created = create(as_alice, url="http://127.0.0.1:9/", signing_scheme="ed25519")
    assert created.status_code == 201, created.content
    assert created.json()["signing_scheme"] == "ed25519"
    pk = created.json()["id"]
    endpoint = Endpoint.objects.get(pk=pk)
    served = as_alice.get(API + f"endpoints/{pk}/public-key/")
    assert served.status_code == 200
    assert served.json() == {"public_key": endpoint.public_key, "previous_public_keys": []}
    assert served.json()["public_key"].startswith("whpk_")
    listed = as_alice.get(API + "endpoints/")
    detail = as_alice.get(API + f"endpoints/{pk}/")
    assert listed.json()["results"][0]["signing_scheme"] == "ed25519"
    assert_no_signing_key(endpoint, created, served, listed, detail)


def test_an_endpoint_is_moved_to_both_then_to_ed25519(as_alice):
    pk = create(as_alice, url="http://127.0.0.1:9/").json()["id"]
    assert as_alice.get(API + f"endpoints/{pk}/").json()["signing_scheme"] == "hmac"
    refused = as_alice.get(API + f"endpoints/{pk}/public-key/")
    assert refused.status_code == 409
    assert (
        refused.json()["code"] == "no_signing_key" and "signing_scheme" in refused.json()["detail"]
    )
    with override_settings(DJANGO_HOOKS=SETTINGS):
        both = as_alice.patch(
            API + f"endpoints/{pk}/", {"signing_scheme": "hmac+ed25519"}, format="json"
        )
    assert both.status_code == 200 and both.json()["signing_scheme"] == "hmac+ed25519"
    public_key = as_alice.get(API + f"endpoints/{pk}/public-key/").json()["public_key"]
    with override_settings(DJANGO_HOOKS=SETTINGS):
        as_alice.patch(API + f"endpoints/{pk}/", {"signing_scheme": "ed25519"}, format="json")
    # The key made for the migration is the one that goes on signing.
    assert as_alice.get(API + f"endpoints/{pk}/public-key/").json()["public_key"] == public_key
    assert Endpoint.objects.get(pk=pk).signing_scheme == "ed25519"


def test_an_unknown_scheme_is_a_400_naming_the_field(as_alice):
    response = create(as_alice, url="http://127.0.0.1:9/", signing_scheme="v2a")
    assert response.status_code == 400
    assert "signing_scheme" in response.json() and "v2a" in response.json()["signing_scheme"][0]
    assert not Endpoint.objects.exists()


def test_rotation_serves_the_new_public_key_and_the_previous_one(as_alice):
    pk = create(as_alice, url="http://127.0.0.1:9/", signing_scheme="ed25519").json()["id"]
    old = Endpoint.objects.get(pk=pk).public_key
    rotated = as_alice.post(
        API + f"endpoints/{pk}/rotate-signing-key/", {"grace_period": 3600}, format="json"
    )
    assert rotated.status_code == 200
    body = rotated.json()
    endpoint = Endpoint.objects.get(pk=pk)
    assert body["public_key"] == endpoint.public_key != old
    (previous,) = body["previous_public_keys"]
    assert previous["public_key"] == old
    expires = dt.datetime.fromisoformat(previous["expires_at"])
    assert 3590 < (expires - timezone.now()).total_seconds() <= 3600
    assert as_alice.get(API + f"endpoints/{pk}/public-key/").json() == body
    assert_no_signing_key(endpoint, rotated)
    bad = as_alice.post(
        API + f"endpoints/{pk}/rotate-signing-key/", {"grace_period": -1}, format="json"
    )
    assert bad.status_code == 400 and "grace_period" in bad.json()


def test_another_owners_keys_are_a_404(as_alice, as_bob):
    pk = create(as_alice, url="http://127.0.0.1:9/", signing_scheme="ed25519").json()["id"]
    assert as_bob.get(API + f"endpoints/{pk}/public-key/").status_code == 404
    assert as_bob.post(API + f"endpoints/{pk}/rotate-signing-key/", {}).status_code == 404
    public_key = Endpoint.objects.get(pk=pk).public_key
    assert as_alice.get(API + f"endpoints/{pk}/public-key/").json()["public_key"] == public_key
