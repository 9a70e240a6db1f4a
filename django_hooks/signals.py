"""Signals django-hooks sends. Receivers run after the change they report has committed."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

__all__ = [
    "delivery_failed",
    "delivery_succeeded",
    "endpoint_disabled",
    "endpoint_failing",
    "webhook_received",
]

logger = logging.getLogger("django_hooks.signals")


class HooksSignal(Signal):
    """A ``Signal`` whose ``send_robust`` logs each receiver that raised (with its traceback)
    instead of only returning the error: a failing receiver never stops a worker, and is seen."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def send_robust(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        responses = super().send_robust(sender, **named)
        self._log_failures(responses)
        return responses

    async def asend_robust(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        responses = await super().asend_robust(sender, **named)
        self._log_failures(responses)
        return responses

    def _log_failures(self, responses: list[tuple[Any, Any]]) -> None:
        for receiver, response in responses:
            if isinstance(response, Exception):
                name = getattr(receiver, "__qualname__", None) or repr(receiver)
                logger.error(
                    "Receiver %s of django_hooks.signals.%s raised %s",
                    name,
                    self.name,
                    type(response).__name__,
                    exc_info=response,
                )


#: Sent when a delivery reaches a 2xx response.
#: provides args: delivery, attempt
delivery_succeeded = HooksSignal("delivery_succeeded")

#: Sent when a delivery has used its last retry and is marked ``failed``.
#: provides args: delivery, attempt
delivery_failed = HooksSignal("delivery_failed")

#: Sent when an endpoint is disabled automatically (410 Gone, or failing for DISABLE_AFTER).
#: provides args: endpoint, reason
endpoint_disabled = HooksSignal("endpoint_disabled")

#: Sent when an endpoint has failed continuously past one of FAILURE_WARNINGS' thresholds:
#: once per threshold and failing spell (a success, or re-enabling, starts a new spell).
#: ``threshold`` is in seconds; ``disable_at`` is when DISABLE_AFTER will disable it.
#: provides args: endpoint, failing_since, threshold, disable_at
endpoint_failing = Signal()

#: Sent when an inbound webhook has been verified and stored, before its handler runs.
#: provides args: request, webhook
webhook_received = HooksSignal("webhook_received")
