"""``@webhook_receiver``: verify, store once, then run the view (inline or on RQ).

Thin Django glue around ``verifiers``: it reads the raw body once, maps verification errors to
4xx JSON answers, stores the call under a unique (source, webhook id) so a repeated delivery never
runs its handler twice, even when both copies arrive at once, and records the outcome.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from django_hooks import signals
from django_hooks.conf import hooks_settings
from django_hooks.core.errors import InvalidSecret, InvalidSignature
from django_hooks.core.payload import contains_nul
from django_hooks.exceptions import ConfigurationError
from django_hooks.inbound.queue import enqueue_call
from django_hooks.inbound.verifiers import Verified, Verifier, get_verifier
from django_hooks.models import INBOUND_LEASE, InboundWebhook

__all__ = ["TenantSecret", "WebhookCall", "webhook_receiver"]

logger = logging.getLogger("django_hooks.inbound")

# Never stored: they carry credentials of the sender or of our own users.
DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})


@dataclass(frozen=True, repr=False)
class TenantSecret:
    """What a secret callable returns to say whose secret it chose: the call is then stored, and
    its duplicates detected, under that ``tenant`` (one tenant's ids never hide another's).

    ``secret`` is a string or a list (rotation), as a plain return value would be.
    """

    secret: str | Sequence[str]
    tenant: str

    def __repr__(self) -> str:  # never the secret
        return f"TenantSecret(tenant={self.tenant!r})"


SecretSource = str | Sequence[str] | Callable[[HttpRequest], "str | Sequence[str] | TenantSecret"]
View = Callable[..., HttpResponse]


@dataclass
class WebhookCall:
    """What a handler sees as ``request.webhook``."""

    id: str
    type: str
    payload: Any
    timestamp: int | None
    provider: str
    source: str
    record: InboundWebhook | None
    #: Whose secret verified the call (see ``TenantSecret``); "" for a fixed secret.
    tenant: str = ""


def stored_call(record: InboundWebhook, verifier: Verifier | None) -> WebhookCall:
    """``request.webhook`` for a stored call run later: what the handler saw on the request
    (``verifier``, the receiver's, parses the stored body again where the row lacks a field)."""
    call_id, payload = record.sender_id, record.payload
    # A payload too odd to store (NUL), or a call stored before sender_id existed: the stored
    # body and headers give the request's view back, through the receiver's own parser.
    if verifier is not None and (payload is None or not call_id):
        try:
            parsed = verifier.parse(bytes(record.body), record.headers, record.signed_at)
        except InvalidSignature:
            parsed = None
        if parsed is not None:
            call_id = call_id or parsed.id
            payload = parsed.payload if payload is None else payload
    return WebhookCall(
        id=call_id or record.webhook_id,
        type=record.event_type,
        payload=payload,
        timestamp=record.signed_at,
        provider=record.provider,
        source=record.source,
        record=record,
        tenant=record.tenant,
    )


def error(reason: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": reason, **extra}, status=status)


SECRET_NAMES = ("secret", "secrets", "value", "keys", "key", "hmac_keys", "public_keys")


@sensitive_variables(*SECRET_NAMES)
def resolve_secrets(secret: SecretSource, request: HttpRequest) -> list[str]:
    """The secrets that may have signed ``request``; raises ``InvalidSecret`` if there are none."""
    return resolve_secret(secret, request)[0]


@sensitive_variables(*SECRET_NAMES)
def resolve_secret(secret: SecretSource, request: HttpRequest) -> tuple[list[str], str]:
    """The secrets that may have signed ``request``, and the tenant they belong to: the one a
    ``TenantSecret`` names, a fingerprint of what a plain callable chose, or "" for a fixed
    secret."""
    value = secret(request) if callable(secret) else secret
    tenant = ""
    if isinstance(value, TenantSecret):
        tenant = value.tenant
        if not isinstance(tenant, str) or not tenant:
            raise InvalidSecret("TenantSecret.tenant must be a non-empty string")
        value = value.secret
    secrets = [value] if isinstance(value, str) else list(value or [])
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise InvalidSecret("no webhook secret configured for this receiver")
    if callable(secret) and not tenant:
        tenant = secrets_fingerprint(secrets)
    return secrets, tenant


@sensitive_variables(*SECRET_NAMES)
def secrets_fingerprint(secrets: Sequence[str]) -> str:
    """Names the tenant a plain secret callable chose, without storing anything a secret could
    be read back from: a one-way hash of the chosen secrets, whatever their order."""
    digest = hashlib.sha256(b"django-hooks inbound tenant\0")
    for secret in sorted(set(secrets)):
        digest.update(secret.encode("utf-8", "surrogatepass") + b"\0")
    return "secret:" + digest.hexdigest()[:32]


def handler_path(view: View) -> str:
    return f"{view.__module__}:{view.__qualname__}"


def stored_headers(request: HttpRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items() if k.lower() not in DROPPED_HEADERS}


def storable_payload(payload: Any, body: bytes) -> Any:
    """The parsed payload, or None when it holds NUL characters PostgreSQL cannot store (the raw
    body is still kept, and the handler still gets the parsed payload)."""
    # The body test is a cheap filter; only a possible NUL pays for re-encoding the payload.
    if (b"\\u0000" in body or b"%00" in body) and contains_nul(json.dumps(payload)):
        return None
    return payload


MAX_ID = 255  # the column's length


def stored_id(value: str) -> str:
    """``value`` as stored: as is when it fits, else a hash of all of it (two long ids that
    share their first 255 characters must not collide)."""
    if len(value) <= MAX_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def dedupe_key(verifier: Verifier, verified: Verified, body: bytes) -> str:
    """The sender's id when the signature covers it, else a hash of the signed body."""
    if verifier.signs_id and verified.id:
        return stored_id(verified.id)
    return "sha256:" + hashlib.sha256(body).hexdigest()


def store_call(
    request: HttpRequest,
    body: bytes,
    verified: Verified,
    *,
    source: str,
    provider: str,
    handler: str,
    webhook_id: str,
    tenant: str = "",
    locked_until: dt.datetime | None = None,
) -> tuple[InboundWebhook, bool]:
    """Insert the call; ``(existing, False)`` when this (source, tenant, id) is already stored."""
    record = InboundWebhook(
        source=source,
        tenant=stored_id(tenant),
        provider=provider,
        webhook_id=stored_id(webhook_id),
        sender_id=stored_id(verified.id or webhook_id),
        signed_at=verified.timestamp,
        event_type=(verified.type or "")[:255],
        headers=stored_headers(request),
        body=body,
        payload=storable_payload(verified.payload, body),
        handler=handler,
        locked_until=locked_until,
    )
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        existing = InboundWebhook.objects.get(
            source=source, tenant=record.tenant, webhook_id=record.webhook_id
        )
        return existing, False
    return record, True


def retake(record: InboundWebhook) -> bool:
    """Claim a stored call whose handler failed or died, so the sender's retry runs it again."""
    if not InboundWebhook.objects.filter(pk=record.pk).claim(timezone.now()):
        return False
    record.refresh_from_db(fields=["status", "attempts", "locked_until"])
    return True


def run_handler(
    view: View,
    request: Any,
    record: InboundWebhook | None,
    view_args: tuple[Any, ...] = (),
    view_kwargs: dict[str, Any] | None = None,
    *,
    counted: bool = False,
) -> HttpResponse:
    """Run the view and record its outcome; an exception is recorded, then re-raised.

    ``counted``: the caller already counted this attempt when it claimed the call.
    """
    if record is not None and not counted:
        record.attempts += 1
    try:
        response = view(request, *view_args, **(view_kwargs or {}))
    except Exception as exc:
        if record is not None:
            record_outcome(record, error=f"{type(exc).__name__}: {exc}")
        raise
    if record is not None:
        failed = getattr(response, "status_code", 200) >= 400
        record_outcome(record, error=f"handler answered {response.status_code}" if failed else "")
    return response


def lease_end() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=INBOUND_LEASE)


def record_outcome(record: InboundWebhook, *, error: str) -> None:
    record.status = InboundWebhook.Status.FAILED if error else InboundWebhook.Status.PROCESSED
    record.error = error[:10_000]
    record.processed_at = timezone.now()
    record.locked_until = None
    InboundWebhook.objects.filter(pk=record.pk).update(
        status=record.status,
        error=record.error,
        attempts=record.attempts,
        processed_at=record.processed_at,
        locked_until=None,
    )


def body_limit(max_body_bytes: int | None, *args: Any, **kwargs: Any) -> int:
    """A receiver's body limit in bytes: its own, else ``INBOUND_MAX_BODY_BYTES``."""
    return int(max_body_bytes or hooks_settings.INBOUND_MAX_BODY_BYTES)


_warned_asgi = False


def warn_if_unlimited_asgi(request: HttpRequest) -> None:
    """Say once per process that an ASGI application reads receiver bodies whole."""
    global _warned_asgi
    scope = getattr(request, "scope", None)
    if _warned_asgi or scope is None or scope.get("django_hooks.body_limited"):
        return
    _warned_asgi = True
    logger.warning(
        "Webhook receivers are served over ASGI without django_hooks.inbound.asgi."
        "ReceiverBodyLimit: Django reads each body whole before the size check."
    )


def webhook_receiver(
    provider: str | Verifier,
    *,
    secret: SecretSource,
    tolerance: int = 300,
    source: str | None = None,
    store: bool = True,
    run_async: bool = False,
    max_body_bytes: int | None = None,
) -> Callable[[View], View]:
    """Turn a view into a verified webhook endpoint for ``provider``.

    ``secret`` is a string, a list (any may match, for rotation) or ``callable(request)``
    returning either, or a ``TenantSecret`` naming whose secret it chose.
    ``source`` names the receiver in stored calls and scopes duplicate detection (default: the
    provider's name; give two receivers of one provider different sources), per tenant.
    """
    verifier = get_verifier(provider, tolerance=tolerance)
    if run_async and not store:
        raise ConfigurationError(
            "run_async=True needs store=True: the worker reads the stored call."
        )
    name = (source or verifier.provider)[:100]

    def decorator(view: View) -> View:
        path = handler_path(view)

        # The signature replaces CSRF protection and the login: it proves who sent the request
        # (a site with LoginRequiredMiddleware would otherwise redirect every webhook).
        @login_not_required
        @csrf_exempt
        # Never in Django's 500 reports: Django hides these names in every frame below this one
        # (the verifiers' and the signing code's too).
        @sensitive_variables(*SECRET_NAMES)
        @functools.wraps(view)
        def receive(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != "POST":
                response = error("method not allowed: webhooks are POSTed", 405)
                response["Allow"] = "POST"
                return response
            limit = body_limit(max_body_bytes)
            warn_if_unlimited_asgi(request)
            try:
                declared = int(request.headers.get("content-length") or 0)
            except ValueError:
                return error("invalid Content-Length header", 400)
            if declared > limit:
                return error(f"body larger than {limit} bytes", 413)
            try:
                body = request.body
            except RequestDataTooBig:
                return error(f"body larger than {limit} bytes", 413)
            if len(body) > limit:
                return error(f"body larger than {limit} bytes", 413)
            try:
                secrets, tenant = resolve_secret(secret, request)
                verified = verifier.verify(body, request.headers, secrets)
            except InvalidSignature as exc:
                return error(exc.reason, exc.status_code)
            except InvalidSecret:
                logger.error("Webhook receiver %s has no usable secret", name, exc_info=True)
                return error("receiver misconfigured", 500)

            record, retaken = None, False
            if store:
                record, created = store_call(
                    request,
                    body,
                    verified,
                    source=name,
                    provider=verifier.provider,
                    handler=path,
                    webhook_id=dedupe_key(verifier, verified, body),
                    tenant=tenant,
                    locked_until=None if run_async else lease_end(),
                )
                if not created:
                    retaken = not run_async and retake(record)
                    if not retaken:
                        return JsonResponse({"status": "duplicate", "id": record.webhook_id})
            if retaken and record is not None:
                # A retry of a stored call: the handler sees the call as first stored, not the
                # retry's unsigned headers (GitHub's and Shopify's event type and delivery id are
                # outside their signature).
                call = stored_call(record, verifier)
            else:
                call = WebhookCall(
                    id=verified.id or (record.webhook_id if record else ""),
                    type=verified.type,
                    payload=verified.payload,
                    timestamp=verified.timestamp,
                    provider=verifier.provider,
                    source=name,
                    record=record,
                    tenant=tenant,
                )
            request.webhook = call  # type: ignore[attr-defined]
            signals.webhook_received.send_robust(InboundWebhook, request=request, webhook=call)
            if run_async and record is not None:
                transaction.on_commit(functools.partial(enqueue_call, record.pk))
                return JsonResponse({"status": "accepted", "id": record.webhook_id}, status=202)
            return run_handler(view, request, record, args, kwargs, counted=retaken)

        # What a worker needs to run a stored call later: it imports the view by its path
        # (``InboundWebhook.handler``) and finds these on it.
        receive.webhook_handler = view  # type: ignore[attr-defined]
        receive.webhook_verifier = verifier  # type: ignore[attr-defined]
        # Read by ``inbound.asgi.ReceiverBodyLimit``, which stops reading a body at this limit.
        receive.webhook_body_limit = functools.partial(body_limit, max_body_bytes)  # type: ignore[attr-defined]
        return receive

    return decorator
