"""OpenAPI 3.1 with drf-spectacular when installed (``pip install "django-hooks[openapi]"``).

Besides the REST API's paths, the schema carries the event catalogue as OpenAPI ``webhooks``: one
operation per declared event type, the request our workers send (its headers and its body with
the type's JSON Schema), so customers can generate receiver types from it. Without
drf-spectacular the decorators here do nothing and ``schema/`` answers 404 naming the extra.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, JsonResponse

from django_hooks import __version__
from django_hooks.event_types import EventType, declared_event_types
from django_hooks.exceptions import MissingDependency

__all__: list[str] = []

try:
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.openapi import AutoSchema
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter
    from drf_spectacular.utils import extend_schema as _extend_schema
    from drf_spectacular.views import SpectacularAPIView
except ImportError:  # the optional extra is not installed
    SPECTACULAR = False
    AutoSchema = OpenApiTypes = None  # type: ignore[misc,assignment]

    def extend_schema(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:  # type: ignore[no-redef, unused-ignore]
        return lambda target: target

    def OpenApiParameter(*args: Any, **kwargs: Any) -> None:  # type: ignore[no-redef]
        return None

else:
    SPECTACULAR = True

    def extend_schema(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:  # type: ignore[misc, unused-ignore]
        """spectacular's ``extend_schema``, based on its AutoSchema whatever the project's
        ``DEFAULT_SCHEMA_CLASS`` (the API documents itself without settings changes)."""
        decorate = _extend_schema(*args, **kwargs)

        def apply(target: Any) -> Any:
            if getattr(target, "schema", None) is None:
                target.schema = AutoSchema
            return decorate(target)

        return apply


def view_schema() -> Any:
    """The ``schema`` attribute of our views: spectacular's inspector when installed."""
    return AutoSchema() if SPECTACULAR else None


def schema_view() -> Callable[..., Any]:
    if not SPECTACULAR:

        def missing(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            return JsonResponse(
                {"detail": str(MissingDependency("drf-spectacular", "openapi"))}, status=404
            )

        return missing

    class HooksSchemaGenerator(SchemaGenerator):
        """Only the webhooks API, wherever the host project mounts it."""

        def _initialise_endpoints(self) -> None:
            super()._initialise_endpoints()
            self.endpoints = [
                endpoint
                for endpoint in self.endpoints
                if getattr(getattr(endpoint[3], "cls", None), "__module__", "").startswith(
                    "django_hooks.api."
                )
            ]

    return SpectacularAPIView.as_view(
        generator_class=HooksSchemaGenerator,
        custom_settings={
            "TITLE": "Webhooks API",
            "DESCRIPTION": "Manage webhook endpoints, see what was sent, retry, and pull events.",
            "VERSION": __version__,
            "COMPONENT_SPLIT_REQUEST": True,
            # 3.1: the version with a ``webhooks`` object (and JSON Schema 2020-12 schemas).
            "OAS_VERSION": "3.1.0",
            "POSTPROCESSING_HOOKS": [
                "drf_spectacular.hooks.postprocess_schema_enums",
                "django_hooks.api.schema.document_errors",
                "django_hooks.api.schema.document_webhooks",
                "django_hooks.api.schema.document_stream",
                "django_hooks.api.schema.any_or_null",
            ],
        },
    )


ERRORS = {
    "400": "Invalid input: each field named with its reasons, or a `detail`.",
    "401": "Not authenticated (with a challenge).",
    "403": "Not authenticated, or not allowed.",
    "404": "Not found (or not yours), or an unknown `format`.",
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` (and `code`) or, for invalid input, field names with reasons.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "additionalProperties": True,
}


def document_errors(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: the error answers every operation can give, in one schema."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            errors = dict(ERRORS)
            if method == "post":
                errors["409"] = "Conflicts with the object's state or a request in progress."
                errors["422"] = "The Idempotency-Key was used for another request."
            for code, description in errors.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": error}
                )
    return result


# -- the event catalogue as OpenAPI webhooks ------------------------------------------------------

SIGNATURE_DESCRIPTION = (
    "Space-separated signatures of `{webhook-id}.{webhook-timestamp}.{body}`: "
    "`v1,<base64 HMAC-SHA256>` under the endpoint's `whsec_` secret and/or "
    "`v1a,<base64 Ed25519>` under its signing key (verify with the `whpk_` public key from "
    "`endpoints/{id}/public-key/`), per the endpoint's `signing_scheme`; one per live secret or "
    "key while they rotate. Accept the request if any one verifies (Standard Webhooks)."
)
WEBHOOK_HEADERS: dict[str, dict[str, Any]] = {
    "WebhookId": {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id (`msg_…`): the same on every retry, so deduplicate on it.",
        "schema": {"type": "string"},
    },
    "WebhookTimestamp": {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds when this attempt was signed; refuse ones too far from now.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "WebhookSignature": {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": SIGNATURE_DESCRIPTION,
        "schema": {"type": "string"},
    },
}
WEBHOOK_RESPONSES = {
    "2XX": {"description": "Received: the delivery succeeded."},
    "default": {
        "description": "Anything else (3xx, 4xx, 5xx, a timeout, no connection) is retried on "
        "the retry schedule; 410 Gone disables the endpoint."
    },
}


def component_name(event_type: str) -> str:
    """``order.paid`` -> ``OrderPaid``: the stem of a type's component names."""
    words = re.split(r"[^A-Za-z0-9]+", event_type)
    return "".join(word[:1].upper() + word[1:] for word in words if word) or "Event"


def webhooks_object(event_types: Iterable[EventType]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI ``webhooks`` of these event types and the component schemas they refer to.

    Each type's body is ``{"type", "timestamp", "data"}`` as ``<Name>Webhook``, its ``data`` the
    declared JSON Schema as ``<Name>Data`` (any JSON when none is declared).
    """
    webhooks: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event_type in event_types:
        stem = component_name(event_type.name)
        while f"{stem}Webhook" in schemas:  # "order.paid" and "order_paid" both read OrderPaid
            stem += "_"
        data_name, body_name = f"{stem}Data", f"{stem}Webhook"
        schemas[data_name] = _data_schema(event_type, f"#/components/schemas/{data_name}")
        schemas[body_name] = {
            "type": "object",
            "description": f"The body of a `{event_type.name}` webhook.",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"type": "string", "const": event_type.name},
                "timestamp": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the event happened (ISO 8601, UTC), the same on retries.",
                },
                "data": {"$ref": f"#/components/schemas/{data_name}"},
            },
        }
        media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{body_name}"}}
        if event_type.example is not None:
            media["example"] = {
                "type": event_type.name,
                "timestamp": "2026-01-01T12:00:00.000000Z",
                "data": event_type.example,
            }
        webhooks[event_type.name] = {
            "post": {
                "operationId": f"webhook_{stem}",
                "summary": event_type.description or event_type.name,
                "description": f"Sent to every endpoint subscribed to `{event_type.name}` (or a "
                "pattern matching it, such as `prefix.*`), signed per Standard Webhooks.",
                "tags": ["webhooks"],
                "parameters": [
                    {"$ref": f"#/components/parameters/{name}"} for name in WEBHOOK_HEADERS
                ],
                "requestBody": {"required": True, "content": {"application/json": media}},
                "responses": copy.deepcopy(WEBHOOK_RESPONSES),
            }
        }
    return webhooks, schemas


def _data_schema(event_type: EventType, pointer: str) -> dict[str, Any]:
    if event_type.schema is None:
        return {"description": f"The data of `{event_type.name}` (no schema declared)."}
    schema = copy.deepcopy(event_type.schema)
    if "$id" not in schema:
        # A "#/$defs/..." reference means the schema's own root; moved under components, that
        # root is ``pointer``, so local references are rewritten to stay correct.
        schema = _rebased(schema, pointer)
    schema.setdefault("description", event_type.description or f"The data of `{event_type.name}`.")
    return schema


def _rebased(node: Any, pointer: str) -> Any:
    if isinstance(node, dict):
        rebased = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#"):
                rebased[key] = pointer + value[1:]
            elif key in ("const", "enum", "default", "examples", "example"):
                rebased[key] = value  # values, not schemas: left as declared
            else:
                rebased[key] = _rebased(value, pointer)
        return rebased
    if isinstance(node, list):
        return [_rebased(item, pointer) for item in node]
    return node


def document_webhooks(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: the declared event types as the schema's ``webhooks``."""
    webhooks, schemas = webhooks_object(declared_event_types().values())
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(schemas)
    components.setdefault("parameters", {}).update(copy.deepcopy(WEBHOOK_HEADERS))
    result["webhooks"] = webhooks
    result.setdefault("tags", []).append(
        {
            "name": "webhooks",
            "description": "What this site POSTs to your endpoints: one operation per event type.",
        }
    )
    return result


STREAM_EVENT_SCHEMA = {
    "type": "object",
    "description": "The JSON of each server-sent event's `data:` line: a webhook body plus its "
    "id and cursor. Its `data` has the schema of its type's webhook (see `webhooks`).",
    "required": ["id", "type", "timestamp", "data", "cursor"],
    "properties": {
        "id": {"type": "string", "description": "The event id, as `webhook-id`."},
        "type": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "data": {},
        "cursor": {"type": "string", "description": "As the event's `id:` line."},
    },
}
STREAM_DESCRIPTION = (
    "A `text/event-stream` (server-sent events) of the owner's events, oldest first, for as long "
    "as `FEED_STREAM_LIFETIME`. It opens with `retry: 2000`; each event is an unnamed message: "
    "`id: <cursor>` and one `data:` line of JSON (schema `StreamEvent`); comment lines "
    "(`: heartbeat`) keep the connection open. Reconnect with the `Last-Event-ID` header (an "
    "`EventSource` does) to resume after the last event received."
)
STREAM_EXAMPLE = (
    "retry: 2000\n: resuming after the start\n\n"
    'id: 01JDZ3Q8W4M6V5T2R9K0N7C1XB\ndata: {"id":"msg_01JDZ3Q8W4M6V5T2R9K0N7C1XB",'
    '"type":"order.paid","timestamp":"2026-01-01T12:00:00.000000Z","data":{"id":42},'
    '"cursor":"01JDZ3Q8W4M6V5T2R9K0N7C1XB"}\n\n: heartbeat\n\n'
)


def document_stream(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: what the event stream's ``text/event-stream`` body holds."""
    result.setdefault("components", {}).setdefault("schemas", {})["StreamEvent"] = (
        STREAM_EVENT_SCHEMA
    )
    for path, operations in result.get("paths", {}).items():
        if not path.endswith("/events/stream/"):
            continue
        ok = operations.get("get", {}).get("responses", {}).get("200")
        if ok is None:
            continue
        ok["description"] = STREAM_DESCRIPTION
        ok.setdefault("content", {})["text/event-stream"] = {
            "schema": {"type": "string", "description": STREAM_DESCRIPTION},
            "example": STREAM_EXAMPLE,
        }
    return result


def any_or_null(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: under OpenAPI 3.1 a nullable ``JSONField`` comes out as
    ``oneOf: [{}, {"type": "null"}]``, which null matches twice (so no value is valid); "any
    JSON" already includes null, so such a ``oneOf`` becomes ``{}``."""

    def repaired(node: Any) -> Any:
        if isinstance(node, dict):
            branches = node.get("oneOf")
            if isinstance(branches, list) and {} in branches and {"type": "null"} in branches:
                node = {k: v for k, v in node.items() if k != "oneOf"}
            return {key: repaired(value) for key, value in node.items()}
        if isinstance(node, list):
            return [repaired(item) for item in node]
        return node

    result["components"] = repaired(result.get("components", {}))
    return result
