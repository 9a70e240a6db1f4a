"""OpenAPI 3 with drf-spectacular when installed (``pip install "django-hooks[openapi]"``).

Without it the decorators here do nothing and ``schema/`` answers 404 naming the extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse

from django_hooks import __version__
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

    def extend_schema(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:  # type: ignore[no-redef]
        return lambda target: target

    def OpenApiParameter(*args: Any, **kwargs: Any) -> None:  # type: ignore[no-redef]
        return None

else:
    SPECTACULAR = True

    def extend_schema(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:  # type: ignore[misc]
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
            return JsonResponse({"detail": str(MissingDependency("drf-spectacular", "openapi"))},
                                status=404)  # fmt: skip

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
            "POSTPROCESSING_HOOKS": [
                "drf_spectacular.hooks.postprocess_schema_enums",
                "django_hooks.api.schema.document_errors",
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
