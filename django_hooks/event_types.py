"""The event type catalogue: what a site sends, described for its customers.

    import django_hooks
    django_hooks.register_event_type("order.paid", "An order was paid.", schema={...})

Declared types are listed by the REST API at ``event-types/``. The ``EVENT_TYPES`` setting declares
more (``{"order.paid": {"description": ..., "schema": {...}}}`` or a list of names). With
``STRICT_EVENT_TYPES``, ``send_event`` refuses undeclared types and endpoints cannot subscribe to
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django_hooks.exceptions import ConfigurationError, InvalidEventType


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
    from django_hooks.outbound.dispatch import validate_event_type

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
    from django_hooks.conf import hooks_settings

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
            declared[name] = _checked(name, options.get("description", ""), options.get("schema"),
                                      options.get("example"))  # fmt: skip
        except InvalidEventType as exc:
            raise ConfigurationError(f"DJANGO_HOOKS['EVENT_TYPES']: {exc}") from None
    return declared


def declared_event_types() -> dict[str, EventType]:
    """Every declared type by name, sorted: the setting's, then registered ones over them."""
    from django_hooks.conf import hooks_settings

    declared = _from_setting()
    declared.update(_registry)
    test_type = hooks_settings.TEST_EVENT_TYPE
    # Test events are always allowed, so the catalogue lists them too.
    declared.setdefault(test_type, EventType(test_type, "A test event sent to one endpoint."))
    return dict(sorted(declared.items()))


def check_declared(event_type: str) -> None:
    """Raise ``InvalidEventType`` if ``STRICT_EVENT_TYPES`` is on and the type is undeclared."""
    from django_hooks.conf import hooks_settings

    if hooks_settings.STRICT_EVENT_TYPES and event_type not in declared_event_types():
        raise InvalidEventType(
            f"{event_type!r} is not a declared event type (STRICT_EVENT_TYPES is on): declare it "
            "with django_hooks.register_event_type() or the EVENT_TYPES setting."
        )


def undeclared_subscriptions(patterns: list[str]) -> list[str]:
    """The subscription patterns that match no declared type, when ``STRICT_EVENT_TYPES`` is on."""
    from django_hooks.conf import hooks_settings

    if not hooks_settings.STRICT_EVENT_TYPES:
        return []
    names = list(declared_event_types())
    unmatched = []
    for pattern in patterns:
        if pattern == "*" or pattern in names:
            continue
        if pattern.endswith(".*") and any(n.startswith(pattern[:-1]) for n in names):
            continue
        unmatched.append(pattern)
    return unmatched
