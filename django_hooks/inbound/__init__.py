"""Receiving webhooks: ``@webhook_receiver(provider, secret=...)`` on a view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["HMACVerifier", "TenantSecret", "WebhookCall", "webhook_receiver"]

if TYPE_CHECKING:
    from django_hooks.inbound.decorators import TenantSecret, WebhookCall, webhook_receiver
    from django_hooks.inbound.verifiers import HMACVerifier


def __getattr__(name: str) -> Any:
    # Lazy, so that importing this package never imports models before apps are ready.
    if name in ("webhook_receiver", "WebhookCall", "TenantSecret"):
        from django_hooks.inbound import decorators

        return getattr(decorators, name)
    if name == "HMACVerifier":
        from django_hooks.inbound.verifiers import HMACVerifier

        return HMACVerifier
    raise AttributeError(f"module 'django_hooks.inbound' has no attribute {name!r}")
