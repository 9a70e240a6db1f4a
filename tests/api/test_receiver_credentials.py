"""Receiver credentials through the API: write-only, shown as their kind and non-secret parts;
custom header values hidden in responses and kept when sent back hidden."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_hooks.core.credentials import BasicAuth, BearerToken
from django_hooks.models import Endpoint
from tests.api.conftest import API

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {"ALLOWED_NETWORKS": ["127.0.0.0/8"], "RETRY_SCHEDULE": []}
OAUTH2 = {
    "kind": "oauth2",
    "token_url": "http://127.0.0.1:9/token",
    "client_id": "shop",
    "client_secret": "cs_Pl9Ok8Ij7Uh6",
    "scope": "hooks",
}


def test_credentials_are_write_only(as_alice) -> None:
    with override_settings(DJANGO_HOOKS=SETTINGS):
        created = as_alice.post(
            API + "endpoints/",
            {
                "url": "http://127.0.0.1:9/hook",
                "auth": OAUTH2,
                "headers": {"X-Api-Key": "key_Mj6Nh5Bg4"},
            },
            format="json",
        )
        assert created.status_code == 201, created.content
        pk = created.json()["id"]
        shown = {
            "kind": "oauth2",
            "token_url": "http://127.0.0.1:9/token",
            "client_id": "shop",
            "scope": "hooks",
        }
        for response in (
            created,
            as_alice.get(f"{API}endpoints/{pk}/"),
            as_alice.get(API + "endpoints/"),
        ):
            assert "cs_Pl9Ok8Ij7Uh6" not in response.content.decode()
            assert "key_Mj6Nh5Bg4" not in response.content.decode()
        body = created.json()
        assert body["auth"] == shown
        assert body["headers"] == {"X-Api-Key": "[hidden]"}
        endpoint = Endpoint.objects.get(pk=pk)
        assert endpoint.auth.client_secret == "cs_Pl9Ok8Ij7Uh6"

        # Sent back as read (a PUT of what GET returned): credentials and header values kept.
        put = as_alice.put(
            f"{API}endpoints/{pk}/", {**body, "description": "edited"}, format="json"
        )
        assert put.status_code == 400  # auth as shown lacks the secret: named, nothing written
        assert "client_secret is required" in str(put.json()["auth"])
        body.pop("auth")
        put = as_alice.put(
            f"{API}endpoints/{pk}/", {**body, "description": "edited"}, format="json"
        )
        assert put.status_code == 200, put.content
        endpoint = Endpoint.objects.get(pk=pk)
        assert endpoint.headers == {"X-Api-Key": "key_Mj6Nh5Bg4"}
        assert endpoint.auth.client_secret == "cs_Pl9Ok8Ij7Uh6"

        changed = as_alice.patch(
            f"{API}endpoints/{pk}/",
            {"auth": {"kind": "basic", "username": "acme", "password": "pw_Yt5Re4We3"}},
            format="json",
        )
        assert changed.json()["auth"] == {"kind": "basic", "username": "acme"}
        assert Endpoint.objects.get(pk=pk).auth == BasicAuth("acme", "pw_Yt5Re4We3")
        removed = as_alice.patch(f"{API}endpoints/{pk}/", {"auth": None}, format="json")
        assert removed.json()["auth"] is None
        assert Endpoint.objects.get(pk=pk).auth is None


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        ({"kind": "digest"}, "kind must be one of"),
        ({"kind": "bearer"}, "bearer: token is required"),
        ({**OAUTH2, "token_url": "http://10.0.0.1/token"}, "token_url: 10.0.0.1 is a private"),
        ({"kind": "mtls", "certificate": "x", "private_key": "y"}, "not a PEM certificate"),
    ],
)
def test_bad_credentials_are_400_naming_the_problem(as_alice, auth, reason) -> None:
    with override_settings(DJANGO_HOOKS=SETTINGS):
        response = as_alice.post(
            API + "endpoints/", {"url": "http://127.0.0.1:9/hook", "auth": auth}, format="json"
        )
    assert response.status_code == 400, response.content
    assert reason in str(response.json()["auth"])
    assert not Endpoint.objects.exists()


def test_hidden_stands_only_for_a_stored_value(as_alice) -> None:
    with override_settings(DJANGO_HOOKS=SETTINGS):
        response = as_alice.post(
            API + "endpoints/",
            {"url": "http://127.0.0.1:9/hook", "headers": {"X-Api-Key": "[hidden]"}},
            format="json",
        )
    assert response.status_code == 400
    assert "has none for this header" in str(response.json()["headers"])


def test_the_list_decrypts_no_credential(as_alice, alice, monkeypatch) -> None:
    with override_settings(DJANGO_HOOKS=SETTINGS):
        for n in range(5):
            endpoint = Endpoint(url=f"http://127.0.0.1:9/{n}", auth=BearerToken(f"tok_{n}_Ab1Cd2"))
            endpoint.owner = alice
            endpoint.save()
        calls = []
        original = Endpoint.auth.fget
        monkeypatch.setattr(
            Endpoint, "auth", Endpoint.auth.getter(lambda e: calls.append(e) or original(e))
        )
        with CaptureQueriesContext(connection) as queries:
            listed = as_alice.get(API + "endpoints/")
        assert listed.status_code == 200
        assert [e["auth"] for e in listed.json()["results"]] == [{"kind": "bearer"}] * 5
        assert calls == []
        few = len(queries)
        for n in range(5, 10):
            endpoint = Endpoint(url=f"http://127.0.0.1:9/{n}", auth=BearerToken(f"tok_{n}_Ab1Cd2"))
            endpoint.owner = alice
            endpoint.save()
        with CaptureQueriesContext(connection) as queries:
            as_alice.get(API + "endpoints/")
        assert len(queries) == few
