"""Idempotency-Key on POST actions: the same key and body replay the first response with no
second effect for 24 h; another body is refused; keys are per owner."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from django_hooks.api.idempotency import prune_idempotency_keys
from django_hooks.models import Delivery, Endpoint, Event, IdempotencyKey
from tests.api.conftest import API

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {"ALLOWED_NETWORKS": ["127.0.0.0/8"]}


def post(client, url, body, key):
    return client.post(API + url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_the_same_key_and_body_create_one_endpoint(as_alice):
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["order.*"]}
    first = post(as_alice, "endpoints/", body, "create-1")
    again = post(as_alice, "endpoints/", body, "create-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Endpoint.objects.count() == 1
    assert post(as_alice, "endpoints/", body, "create-2").json()["id"] != first.json()["id"]


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_the_same_key_with_another_body_is_refused(as_alice):
    post(as_alice, "endpoints/", {"url": "http://127.0.0.1:9/a"}, "k")
    other = post(as_alice, "endpoints/", {"url": "http://127.0.0.1:9/b"}, "k")
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert list(Endpoint.objects.values_list("url", flat=True)) == ["http://127.0.0.1:9/a"]


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_a_replayed_rotation_rotates_once(as_alice):
    pk = as_alice.post(API + "endpoints/", {"url": "http://127.0.0.1:9/"}, format="json").json()[
        "id"
    ]
    url = f"endpoints/{pk}/rotate-secret/"
    first = post(as_alice, url, {"grace_period": 60}, "rotate-1")
    again = post(as_alice, url, {"grace_period": 60}, "rotate-1")
    assert first.json()["secret"] == again.json()["secret"] == Endpoint.objects.get().secret
    assert len(Endpoint.objects.get().previous_secrets) == 1
    # The same key on another route is another request.
    assert (
        post(as_alice, f"endpoints/{pk}/test/", {"grace_period": 60}, "rotate-1").status_code == 422
    )


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_a_replayed_test_event_and_retry_send_once(as_alice, redis):
    pk = as_alice.post(API + "endpoints/", {"url": "http://127.0.0.1:9/"}, format="json").json()[
        "id"
    ]
    first = post(as_alice, f"endpoints/{pk}/test/", {}, "test-1")
    again = post(as_alice, f"endpoints/{pk}/test/", {}, "test-1")
    assert first.json()["id"] == again.json()["id"]
    assert Event.objects.count() == 1
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=1)
    retried = post(as_alice, f"deliveries/{delivery.pk}/retry/", {}, "retry-1")
    assert retried.status_code == 202
    Delivery.objects.filter(pk=delivery.pk).update(status="failed")
    replay = post(as_alice, f"deliveries/{delivery.pk}/retry/", {}, "retry-1")
    assert replay.status_code == 202 and replay["Idempotent-Replayed"] == "true"
    assert Delivery.objects.get().status == "failed"  # not queued a second time


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_keys_are_per_owner(as_alice, as_bob):
    a = post(as_alice, "endpoints/", {"url": "http://127.0.0.1:9/"}, "shared")
    b = post(as_bob, "endpoints/", {"url": "http://127.0.0.1:9/"}, "shared")
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_keys_expire_after_24_hours(as_alice):
    body = {"url": "http://127.0.0.1:9/"}
    post(as_alice, "endpoints/", body, "old")
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=24, seconds=1))
    assert "Idempotent-Replayed" not in post(as_alice, "endpoints/", body, "old")
    assert Endpoint.objects.count() == 2
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    assert prune_idempotency_keys() == 1


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_a_refused_request_stores_nothing_and_may_be_fixed(as_alice):
    bad = post(as_alice, "endpoints/", {"url": "http://10.0.0.1/"}, "k")
    assert bad.status_code == 400 and not IdempotencyKey.objects.exists()
    assert post(as_alice, "endpoints/", {"url": "http://10.0.0.1/"}, "k").status_code == 400


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_a_key_still_in_progress_is_409_until_abandoned(as_alice):
    body = {"url": "http://127.0.0.1:9/"}
    post(as_alice, "endpoints/", body, "busy")
    # As if the first request were still running.
    IdempotencyKey.objects.update(response_status=None, response_body=None)
    response = post(as_alice, "endpoints/", body, "busy")
    assert response.status_code == 409 and "in progress" in response.json()["detail"]
    assert Endpoint.objects.count() == 1
    # A claim with no response after five minutes belonged to a request that died.
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(minutes=6))
    assert post(as_alice, "endpoints/", body, "busy").status_code == 201


def test_an_overlong_key_is_400(as_alice):
    response = post(as_alice, "endpoints/", {"url": "http://127.0.0.1:9/"}, "k" * 256)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["detail"]


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_a_stored_response_holds_no_secret_in_clear_and_replays_no_store(as_alice):
    pk = as_alice.post(API + "endpoints/", {"url": "http://127.0.0.1:9/"}, format="json").json()[
        "id"
    ]
    url = f"endpoints/{pk}/rotate-secret/"
    first = post(as_alice, url, {}, "rotate-sealed")
    secret = first.json()["secret"]
    stored = IdempotencyKey.objects.get(key="rotate-sealed")
    assert secret not in str(stored.response_body)
    assert secret.removeprefix("whsec_") not in str(stored.response_body)
    again = post(as_alice, url, {}, "rotate-sealed")
    assert again.json()["secret"] == secret
    assert again["Cache-Control"] == first["Cache-Control"] == "no-store"


def test_a_stored_response_sealed_by_a_removed_key_is_refused_not_replayed(as_alice):
    from cryptography.fernet import Fernet

    body = {"url": "http://127.0.0.1:9/hook"}
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(DJANGO_HOOKS={**SETTINGS, "ENCRYPTION_KEYS": [old]}):
        assert post(as_alice, "endpoints/", body, "sealed").status_code == 201
    with override_settings(DJANGO_HOOKS={**SETTINGS, "ENCRYPTION_KEYS": [new]}):
        again = post(as_alice, "endpoints/", body, "sealed")
    assert again.status_code == 409
    assert "can no longer be decrypted" in again.json()["detail"]
    assert Endpoint.objects.count() == 1
