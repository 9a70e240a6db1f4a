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
from django_hooks.exceptions import HandlerNotFound
from django_hooks.models import InboundWebhook
from django_hooks.outbound.tasks import close_stale_connections

logger = logging.getLogger("django_hooks.inbound")

RESTART_HINT = (
    "If the code changed since the workers started, restart them (hooks_worker or rqworker) so "
    "they load it, then reprocess this call; if the view was renamed or removed, this call's "
    "handler no longer exists."
)


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
    from django_hooks.inbound.decorators import record_outcome, run_handler, stored_call

    # A conditional update claims the call: of two jobs for one call, only one runs it.
    if not InboundWebhook.objects.filter(pk=record_id).claim(timezone.now()):
        return "already processed or running"
    record = InboundWebhook.objects.get(pk=record_id)
    try:
        view = find_handler(record)
    except Exception as exc:
        # Recorded, or the call would sit "received" with no error in the admin. Retried like a
        # failing handler: another, restarted worker may have the code.
        record_outcome(record, error=f"{type(exc).__name__}: {exc}")
        logger.error("Inbound webhook %s not run: %s", record.pk, exc)
    else:
        request = StoredRequest(record)
        request.webhook = stored_call(record)  # type: ignore[attr-defined]
        try:
            run_handler(view, request, record, counted=True)
        except Exception:
            logger.exception(
                "Inbound webhook %s handler failed (attempt %s)", record.pk, record.attempts
            )
    if record.status == InboundWebhook.Status.FAILED:
        # Raised, answered >= 400 or not found: the sender already has its 202, so retrying is
        # up to us.
        delay = next_retry_delay(record.attempts, hooks_settings.RETRY_SCHEDULE)
        if delay is not None:
            enqueue_call(record.pk, delay)
    return record.status


def find_handler(record: InboundWebhook) -> Any:
    """The view that received ``record``; ``HandlerNotFound`` says what to do when it is gone."""
    from django_hooks.inbound.decorators import HANDLERS

    if record.handler not in HANDLERS:
        module = record.handler.partition(":")[0]
        # Importing the view's module runs its decorator, which registers the handler; a
        # receiver from the INBOUND setting is registered by building it.
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise HandlerNotFound(
                f"the handler's module {module!r} cannot be imported in this worker ({exc}). "
                f"{RESTART_HINT}"
            ) from exc
        if record.source in (hooks_settings.INBOUND or {}):
            from django_hooks.inbound.views import build_receiver

            build_receiver(record.source)
    if record.handler not in HANDLERS:
        raise HandlerNotFound(
            f"no @webhook_receiver handler {record.handler!r} is registered in this worker. "
            f"{RESTART_HINT}"
        )
    return HANDLERS[record.handler]


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
