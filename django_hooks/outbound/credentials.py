"""Receiver credentials at send time: the Authorization header or client certificate of one
attempt, and the OAuth2 tokens shared by every thread of a worker process.

Everything here is cached per process and keyed on the endpoint and its stored ciphertext, so
a credential changed in the admin or the API is used from the next attempt on. A token is
fetched once per endpoint when it has expired, whatever the number of attempts in flight (the
others wait for it), through the worker's own guarded transport: the SSRF guard vets the
address connected to, and the request has the attempt's total deadline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django_hooks.core.credentials import (
    BasicAuth,
    BearerToken,
    ClientCertificate,
    OAuth2ClientCredentials,
    ReceiverAuth,
)
from django_hooks.models import Endpoint
from django_hooks.outbound.transport import ClientIdentity, HTTPResult, Transport

__all__: list[str] = []

logger = logging.getLogger("django_hooks")

#: Seconds before its stated expiry that a token is fetched again (clocks and transit).
EXPIRY_MARGIN = 30
#: Lifetime assumed for a token whose response states none (RFC 6749 leaves it to the server).
DEFAULT_TOKEN_LIFETIME = 300
#: Seconds a failed token request is remembered: attempts in flight fail at once instead of
#: each asking the token endpoint again.
FAILURE_MEMORY = 10
MAX_CACHED = 4096


class TokenError(Exception):
    """The token endpoint refused or gave no usable token; the message is safe to store."""


@dataclass
class _Token:
    value: str = ""
    expires: float = 0.0  # monotonic
    error: str = ""
    error_until: float = 0.0


class _Slot:
    """One endpoint's token, and the lock that lets one thread fetch it while others wait."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token = _Token()


class TokenCache:
    """OAuth2 access tokens of one process, thread-safe, one fetch at a time per credential."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Any, _Slot] = {}
        self.fetches = 0  # token requests made (for tests and operators)

    def _slot(self, key: Any) -> _Slot:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                if len(self._slots) >= MAX_CACHED:
                    self._slots.clear()
                slot = self._slots[key] = _Slot()
            return slot

    def get(
        self, key: Any, auth: OAuth2ClientCredentials, client: Transport, *, stale: str = ""
    ) -> tuple[str, bool]:
        """A valid token and whether this call fetched it; ``stale``: a token the receiver
        refused, fetched again unless another thread already replaced it."""
        slot = self._slot(key)
        with slot.lock:
            now = time.monotonic()
            token = slot.token
            if token.value and token.value != stale and token.expires > now:
                return token.value, False
            if not stale and token.error and token.error_until > now:
                raise TokenError(token.error)
            try:
                value, lifetime = fetch_token(auth, client)
            except TokenError as exc:
                slot.token = _Token(error=str(exc), error_until=now + FAILURE_MEMORY)
                raise
            finally:
                self.fetches += 1
            slot.token = _Token(value, time.monotonic() + max(lifetime - EXPIRY_MARGIN, 1))
            return value, True

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


def fetch_token(auth: OAuth2ClientCredentials, client: Transport) -> tuple[str, float]:
    """Ask the token endpoint for a client-credentials token: ``(token, lifetime in s)``."""
    body, headers = auth.token_request()
    result = client.post(auth.token_url, body, headers)
    if result.error:
        raise TokenError(f"OAuth2 token request failed: {result.error}")
    try:
        answer = json.loads(result.body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TokenError(
            f"OAuth2 token request failed: HTTP {result.status_code}, not a JSON object"
        )
    if not 200 <= (result.status_code or 0) < 300:
        code = str(answer.get("error", ""))[:100]
        description = str(answer.get("error_description", ""))[:200]
        detail = ": ".join(part for part in (code, description) if part)
        raise TokenError(
            f"OAuth2 token request failed: HTTP {result.status_code}"
            + (f" ({detail})" if detail else "")
        )
    value, kind = answer.get("access_token"), str(answer.get("token_type", "bearer"))
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
        raise TokenError("OAuth2 token response has no usable access_token")
    if kind.lower() != "bearer":
        raise TokenError(f"OAuth2 token type {kind[:20]!r} is not supported (only Bearer)")
    lifetime = answer.get("expires_in", DEFAULT_TOKEN_LIFETIME)
    try:
        seconds = float(lifetime)
    except (TypeError, ValueError):
        seconds = DEFAULT_TOKEN_LIFETIME
    return value, min(max(seconds, 0), 24 * 3600)


tokens = TokenCache()
_decrypted: dict[tuple[int, str], ReceiverAuth] = {}
_identities: dict[tuple[int, str], ClientIdentity] = {}
_lock = threading.Lock()


def endpoint_auth(endpoint: Endpoint) -> ReceiverAuth | None:
    """The endpoint's credentials, decrypted once per process and stored ciphertext."""
    if not endpoint.auth_ciphertext:
        return None
    key = (endpoint.pk, endpoint.auth_ciphertext)
    auth = _decrypted.get(key)
    if auth is None:
        auth = endpoint.auth
        assert auth is not None
        with _lock:
            if len(_decrypted) >= MAX_CACHED:
                _decrypted.clear()
            _decrypted[key] = auth
    return auth


def client_identity(endpoint: Endpoint, auth: ClientCertificate) -> ClientIdentity:
    key = (endpoint.pk, endpoint.auth_ciphertext)
    with _lock:
        identity = _identities.get(key)
        if identity is None:
            if len(_identities) >= MAX_CACHED:
                _identities.clear()
            identity = _identities[key] = ClientIdentity(auth.certificate, auth.private_key)
        return identity


def post_with_auth(
    endpoint: Endpoint, client: Transport, body: bytes, headers: dict[str, str]
) -> HTTPResult:
    """POST an attempt with the endpoint's credentials; ``headers`` gains the Authorization
    sent. An OAuth2 token refused with 401 is fetched again once and the POST made again."""
    auth = endpoint_auth(endpoint)
    if auth is None:
        return client.post(endpoint.url, body, headers)
    if isinstance(auth, BasicAuth | BearerToken):
        headers["Authorization"] = auth.header()
        return client.post(endpoint.url, body, headers)
    if isinstance(auth, ClientCertificate):
        if not isinstance(client, Transport):  # a test's stand-in: no TLS to present it on
            return client.post(endpoint.url, body, headers)
        return client.post(endpoint.url, body, headers, cert=client_identity(endpoint, auth))
    if not isinstance(client, Transport):  # a test's stand-in (webhook_outbox): no token
        return client.post(endpoint.url, body, headers)
    key = (endpoint.pk, endpoint.auth_ciphertext)
    started = time.perf_counter()
    try:
        token, fresh = tokens.get(key, auth, client)
    except TokenError as exc:
        return _failed(str(exc), started)
    headers["Authorization"] = f"Bearer {token}"
    result = client.post(endpoint.url, body, headers)
    if result.status_code != 401 or fresh:
        return result
    try:
        token, _fresh = tokens.get(key, auth, client, stale=token)
    except TokenError as exc:
        return _failed(f"HTTP 401, then {exc}", started)
    headers["Authorization"] = f"Bearer {token}"
    return client.post(endpoint.url, body, headers)


def _failed(error: str, started: float) -> HTTPResult:
    return HTTPResult(None, {}, b"", error[:1000], int((time.perf_counter() - started) * 1000))


def reset() -> None:
    """Forget every cached credential and token."""
    tokens.clear()
    with _lock:
        _decrypted.clear()
        _identities.clear()
