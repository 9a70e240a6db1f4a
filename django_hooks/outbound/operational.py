"""Operational webhooks (``OPERATIONAL_EVENTS``): tell an owner's endpoints when one of their
endpoints has failed past a ``FAILURE_WARNINGS`` threshold or is disabled, or a delivery has used
its last retry, as Svix does.

They are ordinary events sent with ``send_event``, so an endpoint receives them when it
subscribes to them (or to every event). Two guards keep them from feeding on themselves: no
``message.attempt.exhausted`` about the delivery of an operational event, and the endpoint that
was just disabled gets nothing (it is disabled).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django_hooks import signals
from django_hooks.conf import hooks_settings
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.outbound.dispatch import send_event

__all__: list[str] = []

logger = logging.getLogger("django_hooks")

ENDPOINT_DISABLED = "endpoint.disabled"
ENDPOINT_FAILING = "endpoint.failing"
ATTEMPT_EXHAUSTED = "message.attempt.exhausted"
OPERATIONAL_TYPES = frozenset({ENDPOINT_DISABLED, ENDPOINT_FAILING, ATTEMPT_EXHAUSTED})


def logged(receiver: Any) -> Any:
    """The signals are sent with ``send_robust``: log a failure here rather than lose it."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            receiver(*args, **kwargs)
        except Exception:
            logger.exception("Could not send the operational webhook (%s)", receiver.__name__)

    run.__name__ = receiver.__name__
    return run


def owner_of(endpoint: Endpoint) -> tuple[bool, Any]:
    """``(True, owner)``, or ``(False, None)`` when the endpoint's owner no longer exists: its
    notice must not go to the unowned endpoints instead."""
    owner = endpoint.owner
    if owner is None and endpoint.owner_content_type_id is not None:
        return False, None
    return True, owner


@logged
def on_endpoint_disabled(sender: Any, *, endpoint: Endpoint, reason: str, **kwargs: Any) -> None:
    if not hooks_settings.OPERATIONAL_EVENTS:
        return
    found, owner = owner_of(endpoint)
    if not found:
        return
    # send_event only picks receiving endpoints, so the disabled one is left out.
    send_event(
        ENDPOINT_DISABLED,
        {
            "endpoint_id": endpoint.pk,
            "url": endpoint.url,
            "reason": reason,
            "disabled_at": endpoint.disabled_at,
        },
        owner=owner,
    )


@logged
def on_endpoint_failing(
    sender: Any,
    *,
    endpoint: Endpoint,
    failing_since: dt.datetime,
    threshold: float,
    disable_at: dt.datetime,
    **kwargs: Any,
) -> None:
    if not hooks_settings.OPERATIONAL_EVENTS:
        return
    found, owner = owner_of(endpoint)
    if not found:
        return
    send_event(
        ENDPOINT_FAILING,
        {
            "endpoint_id": endpoint.pk,
            "url": endpoint.url,
            "failing_since": failing_since,
            "failing_for": threshold,
            "disable_at": disable_at,
        },
        owner=owner,
    )


@logged
def on_delivery_failed(
    sender: Any, *, delivery: Delivery, attempt: DeliveryAttempt | None, **kwargs: Any
) -> None:
    if not hooks_settings.OPERATIONAL_EVENTS or delivery.event.type in OPERATIONAL_TYPES:
        return
    found, owner = owner_of(delivery.endpoint)
    if not found:
        return
    last_attempt = None
    if attempt is not None:
        last_attempt = {
            "status_code": attempt.status_code,
            "error": attempt.error,
            "timestamp": attempt.created_at,
        }
    send_event(
        ATTEMPT_EXHAUSTED,
        {
            "endpoint_id": delivery.endpoint_id,
            "event_id": delivery.event_id,
            "event_type": delivery.event.type,
            "attempts": delivery.attempts,
            "last_attempt": last_attempt,
        },
        owner=owner,
    )


def connect_operational_events() -> None:
    """Connected in ``apps.ready``; each receiver checks ``OPERATIONAL_EVENTS`` when it runs."""
    signals.endpoint_disabled.connect(
        on_endpoint_disabled, dispatch_uid="django_hooks.operational.endpoint_disabled"
    )
    signals.endpoint_failing.connect(
        on_endpoint_failing, dispatch_uid="django_hooks.operational.endpoint_failing"
    )
    signals.delivery_failed.connect(
        on_delivery_failed, dispatch_uid="django_hooks.operational.delivery_failed"
    )
