"""The event catalogue in the served OpenAPI 3.1 schema: one ``webhooks`` operation per declared
type, whose body schema validates what our workers really send; the event stream described."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

pytest.importorskip("jsonschema", reason="the jsonschema extra is not installed")
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import django_hooks
from django_hooks.api.schema import component_name, webhooks_object
from django_hooks.event_types import EventType, unregister_event_type
from django_hooks.models import Endpoint
from django_hooks.testing import drain
from tests.api.conftest import API

pytest.importorskip("drf_spectacular")

pytestmark = pytest.mark.django_db

SCHEMA_URL = API + "schema/?format=json"
ORDER = {
    "type": "object",
    "required": ["id", "lines"],
    "properties": {
        "id": {"type": "integer"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
    },
    "$defs": {
        "line": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}}
    },
}
EXAMPLE = {"id": 7, "lines": [{"sku": "A-1"}]}


@pytest.fixture
def order_paid():
    django_hooks.register_event_type(
        "order.paid", "An order was paid.", schema=ORDER, example=EXAMPLE
    )
    yield
    unregister_event_type("order.paid")


def served(client) -> dict:
    return client.get(SCHEMA_URL).json()


def body_validator(document: dict, component: str) -> Draft202012Validator:
    """A validator for one component schema, resolving references inside the whole document,
    as a customer's tooling would."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openapi", resource)
    return Draft202012Validator(
        {"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry
    )


def test_declared_types_are_openapi_webhooks(client, order_paid):
    with override_settings(DJANGO_HOOKS={"EVENT_TYPES": {"invoice.sent": "An invoice was sent."}}):
        schema = served(client)
    assert schema["openapi"] == "3.1.0"
    assert set(schema["webhooks"]) == {"invoice.sent", "order.paid", "webhook.test"}
    operation = schema["webhooks"]["order.paid"]["post"]
    assert operation["summary"] == "An order was paid."
    parameters = [
        schema["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        for p in operation["parameters"]
    ]
    assert {(p["name"], p["in"], p["required"]) for p in parameters} == {
        ("webhook-id", "header", True),
        ("webhook-timestamp", "header", True),
        ("webhook-signature", "header", True),
    }
    media = operation["requestBody"]["content"]["application/json"]
    assert media["schema"] == {"$ref": "#/components/schemas/OrderPaidWebhook"}
    assert media["example"]["data"] == EXAMPLE and media["example"]["type"] == "order.paid"
    assert "2XX" in operation["responses"]
    components = schema["components"]["schemas"]
    body = components["OrderPaidWebhook"]
    assert body["required"] == ["type", "timestamp", "data"]
    assert body["properties"]["type"] == {"type": "string", "const": "order.paid"}
    assert body["properties"]["data"] == {"$ref": "#/components/schemas/OrderPaidData"}
    data = components["OrderPaidData"]
    assert data["properties"]["id"] == ORDER["properties"]["id"]
    # Moved under components, the schema's own references still point inside it.
    assert data["properties"]["lines"]["items"] == {
        "$ref": "#/components/schemas/OrderPaidData/$defs/line"
    }
    # A type declared without a schema still has a body; its data is any JSON.
    assert "no schema declared" in components["InvoiceSentData"]["description"]
    assert ORDER["properties"]["lines"]["items"] == {"$ref": "#/$defs/line"}  # ours untouched


@pytest.mark.usefixtures("redis")
@pytest.mark.django_db(transaction=True)
def test_the_webhook_schema_validates_what_is_really_sent(client, order_paid, receiver):
    document = served(client)
    Endpoint.objects.create(url=receiver.url(), signing_scheme="hmac+ed25519")
    django_hooks.send_event("order.paid", EXAMPLE)
    drain()
    (request,) = receiver.requests
    validator = body_validator(document, "OrderPaidWebhook")
    sent = json.loads(request.body)
    assert list(validator.iter_errors(sent)) == []
    assert (
        list(
            validator.iter_errors(
                document["webhooks"]["order.paid"]["post"]["requestBody"]["content"][
                    "application/json"
                ]["example"]
            )
        )
        == []
    )
    wrong = {**sent, "data": {"id": 7, "lines": [{"sku": 1}]}}
    (error,) = validator.iter_errors(wrong)
    assert list(error.absolute_path) == ["data", "lines", 0, "sku"]
    assert list(validator.iter_errors({**sent, "type": "order.refunded"}))
    signature = document["components"]["parameters"]["WebhookSignature"]["description"]
    assert "v1a," in signature and "public-key/" in signature


def test_the_event_stream_is_described(client):
    schema = served(client)
    ok = schema["paths"]["/api/hooks/events/stream/"]["get"]["responses"]["200"]
    assert "Last-Event-ID" in ok["description"] and "StreamEvent" in ok["description"]
    example = ok["content"]["text/event-stream"]["example"]
    events = [block for block in example.split("\n\n") if block.startswith("id: ")]
    assert events
    validator = body_validator(schema, "StreamEvent")
    for block in events:
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        payload = json.loads(lines["data"])
        assert list(validator.iter_errors(payload)) == []
        assert payload["cursor"] == lines["id"]
    stream_parameters = {
        p["name"] for p in schema["paths"]["/api/hooks/events/stream/"]["get"]["parameters"]
    }
    assert {"after", "types", "Last-Event-ID"} <= stream_parameters


def test_component_names_stay_distinct():
    types = [EventType("order.paid"), EventType("order_paid"), EventType("order:paid")]
    webhooks, schemas = webhooks_object(types)
    assert len([name for name in schemas if name.endswith("Webhook")]) == 3
    assert list(webhooks) == ["order.paid", "order_paid", "order:paid"]
    bodies = [
        webhooks[t.name]["post"]["requestBody"]["content"]["application/json"]["schema"]
        for t in types
    ]
    assert len({b["$ref"] for b in bodies}) == 3
    assert component_name("invoice.line-item.added") == "InvoiceLineItemAdded"


def test_a_schema_with_its_own_id_keeps_its_references():
    schema = {
        "$id": "https://example.com/order.json",
        "$ref": "#/$defs/order",
        "$defs": {"order": {"type": "object"}},
    }
    _, schemas = webhooks_object([EventType("order.paid", schema=schema)])
    assert schemas["OrderPaidData"]["$ref"] == "#/$defs/order"


def test_nullable_json_fields_accept_null_under_openapi_3_1(client):
    event_type = served(client)["components"]["schemas"]["EventType"]["properties"]
    for name in ("schema", "example"):
        assert "oneOf" not in event_type[name]  # null would match both branches: never valid
