"""django-hooks: webhooks for Django, sent and received."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "model_events", "register_event_type", "send_event"]

if TYPE_CHECKING:
    from django_hooks.event_types import register_event_type
    from django_hooks.outbound.dispatch import model_events, send_event


def __getattr__(name: str) -> Any:
    # Lazy: importing django_hooks must not import models before the app registry is ready.
    if name in ("send_event", "model_events"):
        from django_hooks.outbound import dispatch

        return getattr(dispatch, name)
    if name == "register_event_type":
        from django_hooks.event_types import register_event_type

        return register_event_type
    raise AttributeError(f"module 'django_hooks' has no attribute {name!r}")
