"""The event type catalogue and STRICT_EVENT_TYPES."""

from __future__ import annotations

import pytest
from django.test import override_settings

import django_hooks
from django_hooks.event_types import declared_event_types, unregister_event_type
from django_hooks.exceptions import ConfigurationError, EndpointValidationError, InvalidEventType
from django_hooks.models import Endpoint, Event
from tests.api.conftest import API

pytestmark = pytest.mark.django_db

ORDER_SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}


@pytest.fixture
def order_paid():
    django_hooks.register_event_type("order.paid", "An order was paid.", schema=ORDER_SCHEMA)
    yield
    unregister_event_type("order.paid")


def test_declared_types_are_listed_with_their_schema(as_alice, order_paid):
    settings = {"EVENT_TYPES": {"invoice.sent": "An invoice was sent.", "user.created": {}}}
    with override_settings(DJANGO_HOOKS=settings):
        listed = as_alice.get(API + "event-types/").json()
    assert [t["name"] for t in listed] == [
        "invoice.sent",
        "order.paid",
        "user.created",
        "webhook.test",
    ]
    assert listed[1] == {
        "name": "order.paid",
        "description": "An order was paid.",
        "schema": ORDER_SCHEMA,
        "example": None,
    }
    assert listed[0]["schema"] is None


def test_bad_declarations_are_refused():
    with pytest.raises(InvalidEventType):
        django_hooks.register_event_type("order paid")
    with pytest.raises(InvalidEventType, match="schema"):
        django_hooks.register_event_type("order.paid", schema="not a schema")
    with override_settings(DJANGO_HOOKS={"EVENT_TYPES": {"x": {"descripton": "typo"}}}):
        with pytest.raises(ConfigurationError, match="description"):
            declared_event_types()


def test_strict_mode_refuses_undeclared_types_to_send_and_subscribe(order_paid, as_alice):
    with override_settings(
        DJANGO_HOOKS={"STRICT_EVENT_TYPES": True, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}
    ):
        django_hooks.send_event("order.paid", {"id": 1})
        with pytest.raises(InvalidEventType, match="not a declared event type"):
            django_hooks.send_event("order.refunded", {"id": 1})
        assert Event.objects.count() == 1
        with pytest.raises(EndpointValidationError) as error:
            Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["order.refunded"])
        assert "order.refunded" in str(error.value.message_dict["event_types"])
        Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["order.*", "order.paid"])
        Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["*"])
        response = as_alice.post(
            API + "endpoints/",
            {"url": "http://127.0.0.1:9/", "event_types": ["invoice.*"]},
            format="json",
        )
        assert response.status_code == 400
        assert "invoice.*" in response.json()["event_types"][0]
        mine = as_alice.post(
            API + "endpoints/", {"url": "http://127.0.0.1:9/"}, format="json"
        ).json()
        undeclared = as_alice.post(
            API + f"endpoints/{mine['id']}/test/", {"event_type": "order.refunded"}, format="json"
        )
        assert undeclared.status_code == 400 and "not a declared" in undeclared.json()["detail"]
        assert (
            as_alice.post(API + f"endpoints/{mine['id']}/test/", {}, format="json").status_code
            == 202
        )


def test_without_strict_mode_anything_goes():
    django_hooks.send_event("anything.at.all", {})
    Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["nothing.declared"])
