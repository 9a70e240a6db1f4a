"""Issue 15: tampered cursors are a 400, not a 500; rotation floods are capped."""

from __future__ import annotations

import base64

import pytest
from django.test import override_settings

from django_hooks.models import MAX_PREVIOUS_SECRETS, Endpoint
from tests.api.conftest import API

pytestmark = pytest.mark.django_db

SETTINGS = {"ALLOWED_NETWORKS": ["127.0.0.0/8"]}


def cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


TAMPERED = [cursor("p=abc"), cursor("p=1e999&r=1"), cursor("o=-5&p=1"), "%%%", cursor("p=\x00")]


@pytest.mark.parametrize("route", ["endpoints/", "deliveries/"])
@pytest.mark.parametrize("value", [cursor("p=abc"), cursor("p=1e999&r=1"), cursor("p=\x00")])
def test_a_cursor_whose_position_is_no_id_is_a_400_naming_the_cursor(as_alice, route, value):
    response = as_alice.get(API + route, {"cursor": value})
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()


@pytest.mark.parametrize("route", ["endpoints/", "deliveries/", "events/", "events/feed/"])
@pytest.mark.parametrize("value", TAMPERED)
def test_no_tampered_cursor_is_a_server_error(as_alice, route, value):
    response = as_alice.get(API + route, {"cursor": value})
    assert response.status_code in (200, 400, 404), response.content


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_rotating_in_a_loop_keeps_a_bounded_number_of_live_secrets(as_alice):
    pk = as_alice.post(API + "endpoints/", {"url": "http://127.0.0.1:9/"}, format="json").json()[
        "id"
    ]
    for _ in range(30):
        rotated = as_alice.post(API + f"endpoints/{pk}/rotate-secret/", {}, format="json")
        assert rotated.status_code == 200
    endpoint = Endpoint.objects.get(pk=pk)
    assert len(endpoint.previous_secrets) == MAX_PREVIOUS_SECRETS
    assert len(endpoint.live_secrets()) == MAX_PREVIOUS_SECRETS + 1


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_a_tenant_cannot_undo_an_operators_disable_but_can_a_failing_one(as_alice):
    from django_hooks.outbound.state import disable_endpoint, enable_endpoint

    pk = as_alice.post(API + "endpoints/", {"url": "http://127.0.0.1:9/"}, format="json").json()[
        "id"
    ]
    endpoint = Endpoint.objects.get(pk=pk)
    disable_endpoint(endpoint, "Abuse report #12")
    refused = as_alice.patch(API + f"endpoints/{pk}/", {"is_active": True}, format="json")
    assert refused.status_code == 403
    assert "disabled by an operator (Abuse report #12)" in refused.json()["detail"]
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and endpoint.disabled_by == "operator"
    assert as_alice.get(API + f"endpoints/{pk}/").json()["disabled_by"] == "operator"

    enable_endpoint(endpoint)  # the operator lifts it
    disable_endpoint(Endpoint.objects.get(pk=pk), "The endpoint answered 410 Gone.", by="system")
    again = as_alice.patch(API + f"endpoints/{pk}/", {"is_active": True}, format="json")
    assert again.status_code == 200, again.content
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None and endpoint.disabled_by == ""


@override_settings(DJANGO_HOOKS=SETTINGS)
def test_the_test_action_is_no_signing_oracle(as_alice):
    """The endpoint's secret signs only the test event or a declared type's example, and test
    sends never show as the account's events (list or feed)."""
    import django_hooks
    from django_hooks.event_types import unregister_event_type
    from django_hooks.models import Event

    pk = as_alice.post(API + "endpoints/", {"url": "http://127.0.0.1:9/"}, format="json").json()[
        "id"
    ]
    test = API + f"endpoints/{pk}/test/"
    chosen = as_alice.post(test, {"event_type": "payout.sent", "data": {"to": "me"}}, format="json")
    assert chosen.status_code == 400 and "data" in chosen.json()
    undeclared = as_alice.post(test, {"event_type": "payout.sent"}, format="json")
    assert undeclared.status_code == 400
    assert "example" in str(undeclared.json())

    django_hooks.register_event_type("order.paid", "An order was paid.", example={"id": 1})
    try:
        sent = as_alice.post(test, {"event_type": "order.paid"}, format="json")
    finally:
        unregister_event_type("order.paid")
    assert sent.status_code == 202, sent.content
    assert sent.json()["data"] == {"id": 1} and sent.json()["is_test"] is True
    assert as_alice.post(test, {}, format="json").status_code == 202
    assert Event.objects.filter(is_test=True).count() == 2

    assert as_alice.get(API + "events/").json()["results"] == []
    assert as_alice.get(API + "events/feed/", {"wait": 0}).json()["data"] == []
