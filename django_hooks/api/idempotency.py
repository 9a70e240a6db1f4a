"""``Idempotency-Key`` on POST actions: the same key and request within 24 h get the first
response again and cause no second effect; the same key with another request is refused.

Keys are scoped per owner. The first request claims the key in its own transaction (so a
concurrent duplicate sees it in progress), then runs the action and stores the response in one
transaction: a crash leaves neither an effect without its stored response nor the reverse.
Only successful responses are stored; a refused request may be sent again with the same key.

Stored responses are sealed: encrypted with the project's encryption keys (as endpoint secrets
are), because some carry a secret (``rotate-secret``, a new endpoint). A replay gets the first
response's caching and location headers back too, so a ``no-store`` answer stays ``no-store``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from django_hooks.api.exceptions import Conflict, IdempotencyKeyReused, InvalidIdempotencyKey
from django_hooks.api.permissions import request_owner
from django_hooks.exceptions import DecryptionError
from django_hooks.internal import encryption
from django_hooks.models import IdempotencyKey, owner_q

__all__: list[str] = []

HEADER = "Idempotency-Key"
KEEP = dt.timedelta(hours=24)
# A claim older than this without a stored response belongs to a request that died.
ABANDONED = dt.timedelta(minutes=5)


def fingerprint(request: Request) -> str:
    try:
        body = request._request.body
    except RawPostDataException:
        body = json.dumps(request.data, sort_keys=True, cls=JSONEncoder).encode()
    digest = hashlib.sha256()
    for part in (request.method or "").encode(), request.path.encode(), body:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


SEALED = "sealed"
#: Headers of the first response a replay repeats.
REPLAYED_HEADERS = ("Cache-Control", "Location")


def seal(response: Response) -> dict[str, str]:
    """The stored form of a response: its body and replayed headers, encrypted."""
    headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
    body = json.loads(json.dumps(response.data, cls=JSONEncoder))
    return {SEALED: encryption.encrypt(json.dumps({"body": body, "headers": headers}))}


def unseal(stored: Any) -> tuple[Any, dict[str, str]]:
    """A stored response's body and headers (rows stored in clear before sealing: as they are)."""
    if isinstance(stored, dict) and set(stored) == {SEALED}:
        opened = json.loads(encryption.decrypt(stored[SEALED]))
        return opened["body"], opened["headers"]
    return stored, {}


IN_PROGRESS = f"A request with this {HEADER} is in progress; retry shortly."


def _claim(owner: Any, key: str, print_: str) -> tuple[IdempotencyKey | None, bool]:
    """(the stored row, True if this request just claimed the key)."""
    now = timezone.now()
    with transaction.atomic():
        existing = IdempotencyKey.objects.filter(owner_q(owner), key=key).first()
        stale = existing is not None and (
            existing.created_at < now - KEEP
            or (existing.response_status is None and existing.created_at < now - ABANDONED)
        )
        if existing is not None and stale:
            IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            existing = None
        if existing is not None:
            return existing, False
        row = IdempotencyKey(key=key, fingerprint=print_, created_at=now)
        row.owner = owner
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            # A concurrent request with the same key claimed it first.
            return IdempotencyKey.objects.filter(owner_q(owner), key=key).first(), False
        return row, True


def idempotent(action: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a viewset POST handler to honour the ``Idempotency-Key`` header."""

    @functools.wraps(action)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return action(view, request, *args, **kwargs)
        if not 0 < len(key) <= 255 or not key.isprintable():
            raise InvalidIdempotencyKey()
        owner = request_owner(request)
        print_ = fingerprint(request)
        row, claimed = _claim(owner, key, print_)
        if row is None:  # claimed and gone again in between: let the client retry
            raise Conflict(IN_PROGRESS, code="idempotency_key")
        if not claimed:
            if row.fingerprint != print_:
                raise IdempotencyKeyReused(
                    f"This {HEADER} was used for a different request (another route or body) "
                    "in the last 24 hours; use a new key for a new request.",
                    code="idempotency_key",
                )
            if row.response_status is None:
                raise Conflict(IN_PROGRESS, code="idempotency_key")
            try:
                body, headers = unseal(row.response_body)
            except DecryptionError:  # the key that sealed it was removed from the settings
                raise Conflict(
                    f"The response stored for this {HEADER} can no longer be decrypted "
                    "(the encryption keys changed); send the request with a new key.",
                    code="idempotency_key",
                ) from None
            response = Response(body, status=row.response_status, headers=headers)
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            with transaction.atomic():
                response = action(view, request, *args, **kwargs)
                if status.is_success(response.status_code):
                    IdempotencyKey.objects.filter(pk=row.pk).update(
                        response_status=response.status_code, response_body=seal(response)
                    )
                else:
                    IdempotencyKey.objects.filter(pk=row.pk).delete()
        except BaseException:
            IdempotencyKey.objects.filter(pk=row.pk).delete()
            raise
        return response

    return wrapper


def prune_idempotency_keys(now: dt.datetime | None = None) -> int:
    """Delete keys older than 24 h; return how many."""
    now = now or timezone.now()
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=now - KEEP).delete()
    return deleted
