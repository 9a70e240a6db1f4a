"""VALIDATE_EVENT_DATA: ``send_event`` checks ``data`` against its type's declared JSON Schema,
names the failing path, and writes nothing when it fails."""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import sys

import pytest
from django.test import override_settings

import django_hooks
from django_hooks import event_types
from django_hooks.checks import check_settings
from django_hooks.exceptions import (
    ConfigurationError,
    HooksError,
    InvalidEventData,
    MissingDependency,
    PayloadError,
)
from django_hooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

needs_jsonschema = pytest.mark.skipif(
    importlib.util.find_spec("jsonschema") is None, reason="the jsonschema extra is not installed"
)

ORDER = {
    "type": "object",
    "required": ["id", "lines"],
    "properties": {
        "id": {"type": "integer"},
        "paid_on": {"type": "string", "format": "date"},
        "total": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
    },
    "$defs": {
        "line": {
            "type": "object",
            "required": ["sku", "quantity"],
            "properties": {
                "sku": {"type": "string"},
                "quantity": {"type": "integer", "minimum": 1},
            },
        }
    },
}
VALID = {"id": 1, "lines": [{"sku": "A-1", "quantity": 2}]}
ON = {"VALIDATE_EVENT_DATA": True, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}


@pytest.fixture(autouse=True)
def order_paid():
    django_hooks.register_event_type("order.paid", "An order was paid.", schema=ORDER)
    Endpoint.objects.create(url="http://127.0.0.1:9/hook")
    yield
    event_types.unregister_event_type("order.paid")
    event_types._validators.clear()


def refused(data, event_type="order.paid") -> InvalidEventData:
    before = Event.objects.count(), Delivery.objects.count()
    with override_settings(DJANGO_HOOKS=ON):
        with pytest.raises(InvalidEventData) as error:
            django_hooks.send_event(event_type, data)
    assert (Event.objects.count(), Delivery.objects.count()) == before  # nothing written
    return error.value


def test_off_by_default_anything_is_sent():
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"]}):
        django_hooks.send_event("order.paid", {"id": "not a number"})
    assert Event.objects.count() == 1


@needs_jsonschema
def test_valid_data_is_sent():
    with override_settings(DJANGO_HOOKS=ON):
        event = django_hooks.send_event("order.paid", VALID)
    assert Delivery.objects.filter(event=event).count() == 1


@needs_jsonschema
@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        ({**VALID, "id": "42"}, "data.id", "'42' is not of type 'integer'"),
        ({"id": 1}, "data", "'lines' is a required property"),
        ({**VALID, "lines": [VALID["lines"][0], {"sku": "B"}]}, "data.lines[1]", "'quantity'"),
        ({**VALID, "lines": [{"sku": 7, "quantity": 1}]}, "data.lines[0].sku", "not of type"),
        ({**VALID, "lines": [{"sku": "A", "quantity": 0}]}, "data.lines[0].quantity", "minimum"),
        (["not", "an", "object"], "data", "is not of type 'object'"),
    ],
)
def test_invalid_data_is_refused_naming_the_path(data, path, reason):
    error = refused(data)
    assert error.path == path and error.event_type == "order.paid"
    assert reason in error.reason
    assert f"'order.paid' does not match its declared schema at {path}: " in str(error)
    assert isinstance(error, PayloadError) and isinstance(error, HooksError)


@needs_jsonschema
def test_keys_that_are_not_names_are_quoted_in_the_path():
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    django_hooks.register_event_type("stock.counted", schema=schema)
    try:
        assert refused({"a b": "x"}, "stock.counted").path == 'data["a b"]'
    finally:
        event_types.unregister_event_type("stock.counted")


@needs_jsonschema
def test_the_encoded_data_is_what_is_checked():
    # Receivers get the date and the Decimal as strings: that is what the schema describes.
    data = {**VALID, "paid_on": dt.date(2026, 1, 31), "total": decimal.Decimal("9.90")}
    with override_settings(DJANGO_HOOKS=ON):
        django_hooks.send_event("order.paid", data)
    assert "is not a 'date'" in refused({**VALID, "paid_on": "2026-01-32"}).reason
    assert refused({**VALID, "total": decimal.Decimal("9.9")}).path == "data.total"


@needs_jsonschema
def test_several_problems_are_counted():
    error = refused({"id": "x", "lines": [{"sku": 1, "quantity": 1}]})
    assert "(1 more problem)" in error.reason


def test_types_without_a_schema_and_undeclared_types_pass():
    django_hooks.register_event_type("order.noted", "No schema.")
    try:
        with override_settings(DJANGO_HOOKS=ON):
            django_hooks.send_event("order.noted", {"anything": True})
            django_hooks.send_event("order.undeclared", [1, 2])
    finally:
        event_types.unregister_event_type("order.noted")
    assert Event.objects.count() == 2


@needs_jsonschema
def test_a_schema_declared_in_settings_is_checked_too():
    settings = {
        **ON,
        "EVENT_TYPES": {"invoice.sent": {"schema": {"type": "object", "required": ["number"]}}},
    }
    with override_settings(DJANGO_HOOKS=settings):
        with pytest.raises(InvalidEventData, match="'number' is a required property"):
            django_hooks.send_event("invoice.sent", {})
        django_hooks.send_event("invoice.sent", {"number": "F-1"})


@needs_jsonschema
def test_an_invalid_schema_is_a_configuration_error_naming_the_type():
    django_hooks.register_event_type("order.broken", schema={"type": "integr"})
    try:
        with override_settings(DJANGO_HOOKS=ON):
            with pytest.raises(ConfigurationError, match="'order.broken' is not a valid JSON"):
                django_hooks.send_event("order.broken", 1)
    finally:
        event_types.unregister_event_type("order.broken")


def test_without_jsonschema_the_error_names_the_extra(monkeypatch):
    event_types._validators.clear()
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # as if not installed
    with override_settings(DJANGO_HOOKS=ON):
        with pytest.raises(MissingDependency, match=r'pip install "django-hooks\[jsonschema\]"'):
            django_hooks.send_event("order.paid", VALID)
        assert "django_hooks.E014" in {message.id for message in check_settings()}
        assert isinstance(MissingDependency("jsonschema", "jsonschema"), ImportError)
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"]}):
        assert "django_hooks.E014" not in {message.id for message in check_settings()}
        django_hooks.send_event("order.paid", VALID)  # off: jsonschema is never needed


@needs_jsonschema
def test_a_replaced_schema_is_used_at_once():
    with override_settings(DJANGO_HOOKS=ON):
        django_hooks.send_event("order.paid", VALID)
        django_hooks.register_event_type(
            "order.paid", schema={"type": "object", "required": ["currency"]}
        )
        with pytest.raises(InvalidEventData, match="currency"):
            django_hooks.send_event("order.paid", VALID)
