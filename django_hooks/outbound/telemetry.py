"""The hooks the rest of the package calls for OpenTelemetry (the ``TELEMETRY`` setting).

``active()`` is the only call on the request path and in the engine's loop: ``None`` when
``TELEMETRY`` is off, so telemetry that is off costs one settings read and imports nothing from
``opentelemetry``. When it is on, it returns the process's ``Telemetry``
(``django_hooks.outbound.otel``, imported on first use), whose methods make the spans and record
the metrics. What they record is described in docs/telemetry.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import MissingDependency

if TYPE_CHECKING:
    from django_hooks.outbound.otel import Telemetry

__all__: list[str] = []

_telemetry: Telemetry | None = None


def active() -> Telemetry | None:
    """The process's ``Telemetry`` when ``TELEMETRY`` is on, else None (nothing imported)."""
    if not hooks_settings.TELEMETRY:
        return None
    if _telemetry is None:
        return _load()
    return _telemetry


def _load() -> Telemetry:
    global _telemetry
    try:
        # Imported only once TELEMETRY is on: opentelemetry is an optional dependency.
        from django_hooks.outbound import otel
    except ImportError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise MissingDependency("opentelemetry-api", "otel") from exc
    _telemetry = otel.Telemetry()
    return _telemetry
