"""Two owners × every route × every method: each sees and changes only its own objects, another
owner's object is a 404 (never a 403 that confirms it exists), anonymous requests are refused."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

import django_hooks
from django_hooks.models import Delivery, Endpoint, Event, IdempotencyKey
from tests.api.conftest import API

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete"]
BODIES = {
    "endpoint": {"url": "http://127.0.0.1:9/changed", "description": "changed"},
    "rotate-secret": {"grace_period": 0},
    "rotate-signing-key": {"grace_period": 0},
    "recover": {"since": "2020-01-01T00:00:00Z"},
    "replay-missing": {"since": "2020-01-01T00:00:00Z"},
    "test": {},
}


def owned_objects(owner):
    endpoint = Endpoint.objects.create(
        url=f"http://127.0.0.1:9/{owner.username}", signing_scheme="hmac+ed25519"
    )
    endpoint.owner = owner
    endpoint.save()
    event = django_hooks.send_event("order.paid", {"by": owner.username}, owner=owner)
    delivery = Delivery.objects.get(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(status="failed", completed_at=timezone.now())
    return {"endpoint": endpoint.pk, "event": event.pk, "delivery": delivery.pk}


# (route, allowed methods, which object's id fills {id})
ROUTES = [
    ("", {"get"}, None),  # the API root: links to the routes below
    ("endpoints/", {"get", "post"}, None),
    ("endpoints/{id}/", {"get", "put", "patch", "delete"}, "endpoint"),
    ("endpoints/{id}/test/", {"post"}, "endpoint"),
    ("endpoints/{id}/secret/", {"get"}, "endpoint"),
    ("endpoints/{id}/rotate-secret/", {"post"}, "endpoint"),
    ("endpoints/{id}/public-key/", {"get"}, "endpoint"),
    ("endpoints/{id}/rotate-signing-key/", {"post"}, "endpoint"),
    ("endpoints/{id}/stats/", {"get"}, "endpoint"),
    ("endpoints/{id}/recover/", {"post"}, "endpoint"),
    ("endpoints/{id}/replay-missing/", {"post"}, "endpoint"),
    ("event-types/", {"get"}, None),
    ("events/", {"get"}, None),
    ("events/{id}/", {"get"}, "event"),
    ("events/feed/", {"get"}, None),
    ("events/stream/", {"get"}, None),
    ("deliveries/", {"get"}, None),
    ("deliveries/{id}/", {"get"}, "delivery"),
    ("deliveries/{id}/retry/", {"post"}, "delivery"),
]


def body_for(route):
    for name, body in BODIES.items():
        if f"/{name}/" in route:
            return body
    return BODIES["endpoint"]


def test_the_matrix_names_every_route():
    from django_hooks.api.urls import urlpatterns

    served = {str(p.pattern) for p in urlpatterns} - {"schema/"}
    assert len(served) == len(ROUTES)


def state():
    """Everything a request could change."""
    endpoints = list(
        Endpoint.objects.order_by("pk").values_list(
            "pk", "url", "description", "secret_ciphertext", "signing_key_ciphertext", "is_active"
        )
    )
    deliveries = list(Delivery.objects.order_by("pk").values_list("pk", "status"))
    return endpoints, deliveries, Event.objects.count(), IdempotencyKey.objects.count()


@override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"], "FEED_STREAM_LIFETIME": 0})
@pytest.mark.parametrize("route,allowed,kind", ROUTES, ids=[r[0] for r in ROUTES])
def test_another_owners_objects_are_404_and_untouched(
    route, allowed, kind, alice, bob, as_bob, time_travel
):
    theirs = owned_objects(alice)
    owned_objects(bob)
    time_travel.advance(5)  # past the feed's visibility lag
    before = state()
    url = API + route.format(id=theirs[kind] if kind else "")
    for method in METHODS:
        response = getattr(as_bob, method)(url, body_for(route), format="json")
        if method not in allowed:
            assert response.status_code == 405, (method, url)
        elif kind is not None:
            assert response.status_code == 404, (method, url, response.content)
            assert "detail" in response.json()
        elif method == "get" and route != "events/stream/":
            # A list: only Bob's own objects.
            assert response.status_code == 200
            body = response.json()
            rows = body if isinstance(body, list) else body.get("results", body.get("data"))
            assert "alice" not in str(body)
            if route not in ("", "event-types/"):
                listed_kind = {"endpoints/": "endpoint", "deliveries/": "delivery"}.get(
                    route, "event"
                )
                assert theirs[listed_kind] not in {r["id"] for r in rows}
                assert rows, "Bob's own object is listed"
    after = state()
    # Nothing of Alice's changed (Bob's endpoint creation aside).
    alice_endpoints = [e for e in after[0] if e[0] == theirs["endpoint"]]
    assert alice_endpoints == [e for e in before[0] if e[0] == theirs["endpoint"]]
    assert Delivery.objects.get(pk=theirs["delivery"]).status == "failed"
    assert not Event.objects.filter(owner_id=str(alice.pk)).exclude(pk=theirs["event"]).exists()


@pytest.mark.parametrize("route,allowed,kind", ROUTES, ids=[r[0] for r in ROUTES])
def test_anonymous_requests_are_refused(route, allowed, kind, alice):
    theirs = owned_objects(alice)
    before = state()
    url = API + route.format(id=theirs[kind] if kind else "")
    client = APIClient()
    for method in METHODS:
        response = getattr(client, method)(url, body_for(route), format="json")
        # DRF's default authentication (session first) answers 403; 401 with a challenge.
        assert response.status_code in (401, 403, 405), (method, url)
        if method in allowed:
            assert response.status_code in (401, 403)
    assert state() == before


@pytest.mark.parametrize("route,allowed,kind", ROUTES, ids=[r[0] for r in ROUTES])
def test_owners_reach_their_own_objects(route, allowed, kind, alice, as_alice):
    mine = owned_objects(alice)
    url = API + route.format(id=mine[kind] if kind else "")
    method = sorted(allowed)[0] if "get" not in allowed else "get"
    with override_settings(
        DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"], "FEED_STREAM_LIFETIME": 0}
    ):
        response = getattr(as_alice, method)(url, body_for(route), format="json")
    assert response.status_code in (200, 201, 202), (method, url, response.content)


def test_basic_authentication_answers_401_with_a_challenge(alice):
    alice.set_password("pw-alice")
    alice.save()
    with override_settings(
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"]
        }
    ):
        anonymous = APIClient().get(API + "endpoints/")
        assert anonymous.status_code == 401
        assert anonymous["WWW-Authenticate"].startswith("Basic")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6cHctYWxpY2U=")  # alice:pw-alice
        assert client.get(API + "endpoints/").status_code == 200


def test_project_permissions_are_never_widened(as_alice):
    with override_settings(
        REST_FRAMEWORK={"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"]}
    ):
        assert as_alice.get(API + "endpoints/").status_code == 403


def test_a_custom_owner_resolver_scopes_by_its_owner(alice, bob, as_alice):
    owned_objects(bob)
    settings = {
        "ALLOWED_NETWORKS": ["127.0.0.0/8"],
        "API_OWNER": "tests.api.test_authorization.bobs_org",
    }
    with override_settings(DJANGO_HOOKS=settings):
        listed = as_alice.get(API + "endpoints/").json()["results"]
    assert [e["url"] for e in listed] == ["http://127.0.0.1:9/bob"]
    with override_settings(
        DJANGO_HOOKS={**settings, "API_OWNER": "tests.api.test_authorization.nobody"}
    ):
        assert as_alice.get(API + "endpoints/").status_code == 403


def bobs_org(request):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="bob")


def nobody(request):
    return None


def test_stats_window_is_validated(alice, as_alice):
    mine = owned_objects(alice)
    now = timezone.now()
    url = API + f"endpoints/{mine['endpoint']}/stats/"
    bad = as_alice.get(
        url, {"since": now.isoformat(), "until": (now - dt.timedelta(1)).isoformat()}
    )
    assert bad.status_code == 400 and "until" in bad.json()


def test_an_unimportable_owner_resolver_is_a_configuration_error(as_alice):
    from django_hooks.exceptions import ConfigurationError

    with override_settings(DJANGO_HOOKS={"API_OWNER": "tests.api.nowhere.owner"}):
        with pytest.raises(ConfigurationError, match="API_OWNER"):
            as_alice.get(API + "endpoints/")
