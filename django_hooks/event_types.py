"""Event types: their grammar, how subscriptions match them, and the catalogue of what a site
sends, described for its customers.

A type is dot-separated words (``order.paid``); an endpoint subscribes to types, ``prefix.*``
patterns (every type under ``prefix``) or ``*`` (everything). This module is the one place that
knows it: the models, ``send_event``, the API's filters and the feed all ask here.

    import django_hooks
    django_hooks.register_event_type("order.paid", "An order was paid.", schema={...})

Declared types are listed by the REST API at ``event-types/``. The ``EVENT_TYPES`` setting declares
more (``{"order.paid": {"description": ..., "schema": {...}}}`` or a list of names). With
``STRICT_EVENT_TYPES``, ``send_event`` refuses undeclared types and endpoints cannot subscribe to
them. With ``VALIDATE_EVENT_DATA`` (for tests and development), ``send_event`` checks ``data``
against its type's schema (``pip install "django-hooks[jsonschema]"``). The REST API's schema
publishes the catalogue as OpenAPI 3.1 ``webhooks`` (see ``django_hooks.api.schema``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import (
    ConfigurationError,
    InvalidEventData,
    InvalidEventType,
    MissingDependency,
)

__all__ = ["EventType", "declared_event_types", "register_event_type", "unregister_event_type"]

MAX_LENGTH = 255
_WORDS = r"[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*"
EVENT_TYPE_RE = re.compile(rf"^{_WORDS}$")
PATTERN_RE = re.compile(rf"^(\*|{_WORDS}(\.\*)?)$")
_PATTERN_EXAMPLE = 'such as "order.paid", a pattern such as "order.*", or "*" for every event'


# -- the grammar ---------------------------------------------------------------------------------


def validate_event_type(event_type: Any) -> None:
    """Raise ``InvalidEventType`` unless ``event_type`` is a valid type name."""
    if not isinstance(event_type, str) or not EVENT_TYPE_RE.match(event_type):
        raise InvalidEventType(
            f"{event_type!r} is not a valid event type: use dot-separated words of letters, "
            'digits, "_", "-" and ":", such as "order.paid".'
        )
    if len(event_type) > MAX_LENGTH:
        raise InvalidEventType(f"event types are at most {MAX_LENGTH} characters")


def is_pattern(value: Any) -> bool:
    """Whether ``value`` is something one can subscribe to: a type, ``prefix.*`` or ``*``."""
    return isinstance(value, str) and len(value) <= MAX_LENGTH and bool(PATTERN_RE.match(value))


def pattern_problems(patterns: Any) -> list[str]:
    """What is wrong with a list of subscription patterns, naming each bad entry."""
    if not isinstance(patterns, list):
        return [f"Must be a list of event types {_PATTERN_EXAMPLE}; got {type(patterns).__name__}."]
    problems = []
    for entry in patterns:
        if not isinstance(entry, str):
            problems.append(
                f"{entry!r} is not an event type: entries are strings {_PATTERN_EXAMPLE}."
            )
        elif not is_pattern(entry):
            problems.append(
                f"{entry!r} is not an event type or pattern: use names {_PATTERN_EXAMPLE}."
            )
    return problems


# -- matching ------------------------------------------------------------------------------------


def patterns_matching(event_type: str) -> list[str]:
    """The subscriptions that match ``event_type`` other than ``*``: itself and each
    ``prefix.*`` above it (what the delivery insert looks up)."""
    parts = event_type.split(".")
    return [event_type] + [".".join(parts[:i]) + ".*" for i in range(1, len(parts))]


def matches(pattern: str, event_type: str) -> bool:
    """Whether a subscription ``pattern`` matches ``event_type``."""
    if pattern == "*" or pattern == event_type:
        return True
    return pattern.endswith(".*") and event_type.startswith(pattern[:-1])


def types_q(patterns: list[str], field: str = "type") -> Q:
    """Rows whose ``field`` matches any of ``patterns`` (none, or ``*``: every row)."""
    if not patterns or "*" in patterns:
        return Q()
    q = Q()
    for pattern in patterns:
        if pattern.endswith(".*"):
            q |= Q(**{f"{field}__startswith": pattern[:-1]})
        else:
            q |= Q(**{field: pattern})
    return q


# -- the catalogue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventType:
    """One declared event type; ``schema`` is a JSON Schema of its ``data`` (or None)."""

    name: str
    description: str = ""
    schema: dict[str, Any] | None = field(default=None, hash=False)
    #: Sample ``data``: what a test send of this type carries (and what the docs can show).
    example: Any = field(default=None, hash=False)


_registry: dict[str, EventType] = {}


def _checked(name: Any, description: Any, schema: Any, example: Any = None) -> EventType:
    validate_event_type(name)
    if not isinstance(description, str):
        raise InvalidEventType(f"The description of {name!r} must be a string.")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidEventType(f"The schema of {name!r} must be a JSON Schema object (a dict).")
    return EventType(name, description, schema, example)


def register_event_type(
    name: str, description: str = "", schema: dict[str, Any] | None = None, example: Any = None
) -> EventType:
    """Declare an event type (again: replaces it). ``example`` is sample ``data``: what a test
    send of this type carries."""
    event_type = _checked(name, description, schema, example)
    _registry[name] = event_type
    return event_type


def unregister_event_type(name: str) -> None:
    _registry.pop(name, None)


def _from_setting() -> dict[str, EventType]:
    value = hooks_settings.EVENT_TYPES or {}
    if isinstance(value, list | tuple):
        value = {name: {} for name in value}
    if not isinstance(value, dict):
        raise ConfigurationError("DJANGO_HOOKS['EVENT_TYPES'] must be a dict or a list of names.")
    declared = {}
    for name, options in value.items():
        if isinstance(options, str):
            options = {"description": options}
        if not isinstance(options, dict) or set(options) - {"description", "schema", "example"}:
            raise ConfigurationError(
                f"DJANGO_HOOKS['EVENT_TYPES'][{name!r}] must be a dict with "
                '"description", "schema" and/or "example".'
            )
        try:
            declared[name] = _checked(
                name, options.get("description", ""), options.get("schema"), options.get("example")
            )
        except InvalidEventType as exc:
            raise ConfigurationError(f"DJANGO_HOOKS['EVENT_TYPES']: {exc}") from None
    return declared


def declared_event_types() -> dict[str, EventType]:
    """Every declared type by name, sorted: the setting's, then registered ones over them."""
    declared = _from_setting()
    declared.update(_registry)
    test_type = hooks_settings.TEST_EVENT_TYPE
    # Test events are always allowed, so the catalogue lists them too.
    declared.setdefault(test_type, EventType(test_type, "A test event sent to one endpoint."))
    return dict(sorted(declared.items()))


def check_declared(event_type: str) -> None:
    """Raise ``InvalidEventType`` if ``STRICT_EVENT_TYPES`` is on and the type is undeclared."""
    if hooks_settings.STRICT_EVENT_TYPES and event_type not in declared_event_types():
        raise InvalidEventType(
            f"{event_type!r} is not a declared event type (STRICT_EVENT_TYPES is on): declare it "
            "with django_hooks.register_event_type() or the EVENT_TYPES setting."
        )


def undeclared_subscriptions(patterns: list[str]) -> list[str]:
    """The subscription patterns that match no declared type, when ``STRICT_EVENT_TYPES`` is on."""
    if not hooks_settings.STRICT_EVENT_TYPES:
        return []
    names = list(declared_event_types())
    return [pattern for pattern in patterns if not any(matches(pattern, n) for n in names)]


# -- validating data against the declared schemas (VALIDATE_EVENT_DATA) --------------------------

#: event type -> (the schema object it was built from, its validator): built once per schema.
_validators: dict[str, tuple[dict[str, Any], Any]] = {}
_MAX_REASON = 300


def check_data(event_type: str, body: bytes) -> None:
    """With ``VALIDATE_EVENT_DATA`` on, raise ``InvalidEventData`` naming the first place where
    the encoded event's ``data`` breaks its type's declared schema. Types without a schema pass."""
    if not hooks_settings.VALIDATE_EVENT_DATA:
        return
    declared = declared_event_types().get(event_type)
    if declared is None or declared.schema is None:
        return
    validator = _validator(declared)
    # What receivers get, after encoding (dates, decimals...), is what the schema describes.
    data = json.loads(body)["data"]
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    from jsonschema.exceptions import best_match  # noqa: PLC0415  (optional: the jsonschema extra)

    error = best_match(errors)
    reason = (
        error.message if len(error.message) <= _MAX_REASON else error.message[:_MAX_REASON] + "…"
    )
    if len(errors) > 1:
        reason += f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    raise InvalidEventData(event_type, data_path(error.absolute_path), reason)


def data_path(parts: Any) -> str:
    """``data.items[0].price`` for the parts ``["items", 0, "price"]``."""
    path = "data"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _validator(declared: EventType) -> Any:
    schema = declared.schema
    assert schema is not None
    cached = _validators.get(declared.name)
    if cached is not None and cached[0] is schema:
        return cached[1]
    try:
        from jsonschema import validators  # noqa: PLC0415  (optional: the jsonschema extra)
        from jsonschema.exceptions import SchemaError  # noqa: PLC0415  (optional, as above)
    except ImportError:
        raise MissingDependency("jsonschema", "jsonschema") from None
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ConfigurationError(
            f"The schema of event type {declared.name!r} is not a valid JSON Schema: {exc.message}"
        ) from None
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    _validators[declared.name] = (schema, validator)
    return validator
