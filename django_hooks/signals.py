"""Signals django-hooks sends. Receivers run after the change they report has committed."""

from django.dispatch import Signal

__all__ = [
    "delivery_failed", "delivery_succeeded", "endpoint_disabled", "endpoint_failing",
    "webhook_received",
]  # fmt: skip

#: Sent when a delivery reaches a 2xx response.
#: provides args: delivery, attempt
delivery_succeeded = Signal()

#: Sent when a delivery has used its last retry and is marked ``failed``.
#: provides args: delivery, attempt
delivery_failed = Signal()

#: Sent when an endpoint is disabled automatically (410 Gone, or failing for DISABLE_AFTER).
#: provides args: endpoint, reason
endpoint_disabled = Signal()

#: Sent when an endpoint has failed continuously past one of FAILURE_WARNINGS' thresholds:
#: once per threshold and failing spell (a success, or re-enabling, starts a new spell).
#: ``threshold`` is in seconds; ``disable_at`` is when DISABLE_AFTER will disable it.
#: provides args: endpoint, failing_since, threshold, disable_at
endpoint_failing = Signal()

#: Sent when an inbound webhook has been verified and stored, before its handler runs.
#: provides args: request, webhook
webhook_received = Signal()
