"""The RQ job that runs stored inbound calls' handlers (``run_async=True``, ``hooks_reprocess``),
retried on exception. Queueing them is ``django_hooks.inbound.queue``."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.core.retry import next_retry_delay
from django_hooks.exceptions import HandlerNotFound
from django_hooks.inbound.decorators import handler_path, record_outcome, run_handler, stored_call
from django_hooks.inbound.queue import enqueue_call, retry_schedule
from django_hooks.inbound.views import build_receiver
from django_hooks.internal.queue import close_stale_connections
from django_hooks.models import InboundWebhook

__all__: list[str] = []

logger = logging.getLogger("django_hooks.inbound")

RESTART_HINT = (
    "If the code changed since the workers started, restart them (hooks_worker or rqworker) so "
    "they load it, then reprocess this call; if the view was renamed or removed, this call's "
    "handler no longer exists."
)


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
    # A conditional update claims the call: of two jobs for one call, only one runs it.
    if not InboundWebhook.objects.filter(pk=record_id).claim(timezone.now()):
        return "already processed or running"
    record = InboundWebhook.objects.get(pk=record_id)
    try:
        receiver = find_receiver(record)
    except Exception as exc:
        # Recorded, or the call would sit "received" with no error in the admin. Retried like a
        # failing handler: another, restarted worker may have the code.
        record_outcome(record, error=f"{type(exc).__name__}: {exc}")
        logger.error("Inbound webhook %s not run: %s", record.pk, exc)
    else:
        request = StoredRequest(record)
        request.webhook = stored_call(record, receiver.webhook_verifier)  # type: ignore[attr-defined]
        try:
            run_handler(receiver.webhook_handler, request, record, counted=True)
        except Exception:
            logger.exception(
                "Inbound webhook %s handler failed (attempt %s)", record.pk, record.attempts
            )
    if record.status == InboundWebhook.Status.FAILED:
        # Raised, answered >= 400 or not found: the sender already has its 202, so retrying is
        # up to us.
        delay = next_retry_delay(record.attempts, retry_schedule())
        if delay is not None:
            enqueue_call(record.pk, delay)
    return record.status


def find_receiver(record: InboundWebhook) -> Any:
    """The ``@webhook_receiver`` view that received ``record``, found by its path (or, for an
    ``INBOUND`` receiver, built from the setting); ``HandlerNotFound`` says what to do when it
    is gone."""
    if record.source in (hooks_settings.INBOUND or {}):
        receiver = build_receiver(record.source)
        if handler_path(receiver.webhook_handler) == record.handler:
            return receiver
    module_name, _, qualname = record.handler.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerNotFound(
            f"the handler's module {module_name!r} cannot be imported in this worker ({exc}). "
            f"{RESTART_HINT}"
        ) from exc
    for name in qualname.split("."):
        found = getattr(found, name, None)
    if not hasattr(found, "webhook_handler"):
        raise HandlerNotFound(
            f"{record.handler!r} is no @webhook_receiver view in this worker (a receiver must be "
            f"importable by its module and name). {RESTART_HINT}"
        )
    return found
