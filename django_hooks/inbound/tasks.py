"""Running stored inbound calls on RQ (``run_async=True``), with retries on exception."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.core.retry import next_retry_delay
from django_hooks.models import InboundWebhook
from django_hooks.outbound.tasks import close_stale_connections

logger = logging.getLogger("django_hooks.inbound")


def enqueue_call(record_id: int, delay: float = 0) -> None:
    """Queue the handler of a stored call; a Redis failure leaves it for ``hooks_reprocess``."""
    from django_hooks.outbound.tasks import get_queue

    try:
        queue = get_queue()
        if delay > 0:
            queue.enqueue_in(dt.timedelta(seconds=delay), process_call, record_id, result_ttl=0)
        else:
            queue.enqueue(process_call, record_id, result_ttl=0)
    except Exception:
        logger.warning("Could not enqueue inbound webhook %s; run hooks_reprocess.", record_id,
                       exc_info=True)  # fmt: skip


class StoredRequest(HttpRequest):
    """A request rebuilt from a stored call, for handlers that run outside the original request."""

    def __init__(self, record: InboundWebhook) -> None:
        super().__init__()
        self.method = "POST"
        self._body = bytes(record.body)
        self.META = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in record.headers.items()
        }
        if "content-type" in record.headers:
            self.META["CONTENT_TYPE"] = record.headers["content-type"]


def process_call(record_id: int) -> str:
    """The RQ job: run the stored call's handler once; retry on exception per RETRY_SCHEDULE."""
    # A connection the database dropped since the last job is replaced, as around a request.
    close_stale_connections()
    try:
        return run_call(record_id)
    finally:
        close_stale_connections()


def run_call(record_id: int) -> str:
    from django_hooks.inbound.decorators import HANDLERS, WebhookCall, run_handler

    # A conditional update claims the call: of two jobs for one call, only one runs it.
    if not InboundWebhook.objects.filter(pk=record_id).claim(timezone.now()):
        return "already processed or running"
    record = InboundWebhook.objects.get(pk=record_id)
    if record.handler not in HANDLERS:
        # Importing the view's module runs its decorator, which registers the handler; a
        # receiver from the INBOUND setting is registered by building it.
        importlib.import_module(record.handler.partition(":")[0])
        if record.source in (hooks_settings.INBOUND or {}):
            from django_hooks.inbound.views import build_receiver

            build_receiver(record.source)
    if record.handler not in HANDLERS:
        raise LookupError(f"no @webhook_receiver handler {record.handler!r} is importable")
    view = HANDLERS[record.handler]
    request = StoredRequest(record)
    request.webhook = WebhookCall(  # type: ignore[attr-defined]
        id=record.webhook_id, type=record.event_type, payload=record.payload, timestamp=None,
        provider=record.provider, source=record.source, record=record,
    )  # fmt: skip
    try:
        run_handler(view, request, record, counted=True)
    except Exception:
        logger.exception(
            "Inbound webhook %s handler failed (attempt %s)", record.pk, record.attempts
        )
    if record.status == InboundWebhook.Status.FAILED:
        # Raised or answered >= 400: the sender already has its 202, so retrying is up to us.
        delay = next_retry_delay(record.attempts, hooks_settings.RETRY_SCHEDULE)
        if delay is not None:
            enqueue_call(record.pk, delay)
    return record.status


def stranded_calls(*, grace: float = 60) -> Any:
    """Calls whose handler never finished: queued jobs Redis lost, or runs that died mid-way."""
    now = timezone.now()
    return InboundWebhook.objects.filter(
        status=InboundWebhook.Status.RECEIVED, received_at__lte=now - dt.timedelta(seconds=grace)
    ).claimable(now)


def reprocess(records: Any) -> int:
    """Run stored calls again (any status) on the queue; return how many were queued."""
    ids = list(records.values_list("pk", flat=True))
    InboundWebhook.objects.filter(pk__in=ids).update(
        status=InboundWebhook.Status.RECEIVED, error="", locked_until=None
    )
    for pk in ids:
        enqueue_call(pk)
    return len(ids)


def sweep_calls(*, grace: float = 60, limit: int = 10_000) -> int:
    """Enqueue stranded calls' handlers again (``hooks_sweep`` runs this); return how many."""
    ids = list(
        stranded_calls(grace=grace).order_by("received_at").values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        enqueue_call(pk)
    return len(ids)
