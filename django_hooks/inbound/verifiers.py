"""Signature verifiers for inbound webhooks, one small class per sender's scheme.

Pure Python (stdlib + our core), so each scheme is unit-tested without Django; the view decorator
wraps them. Every verifier checks the signature over the raw bytes before it parses the body, and
raises an ``InvalidSignature`` subclass whose ``reason`` is safe to send back: it never holds a
secret or the signature we expected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs

from django_hooks.core import signing
from django_hooks.core.errors import (
    InvalidReceiver,
    InvalidSecret,
    MalformedHeader,
    MalformedPayload,
    MissingHeader,
    SignatureMismatch,
)

__all__ = [
    "PROVIDERS",
    "GitHubVerifier",
    "HMACVerifier",
    "ShopifyVerifier",
    "SlackVerifier",
    "StandardVerifier",
    "StripeVerifier",
    "Verified",
    "Verifier",
    "get_verifier",
]

DEFAULT_TOLERANCE = signing.DEFAULT_TOLERANCE

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_SHA256_BYTES = 32


@dataclass(frozen=True)
class Verified:
    """What an authentic delivery carries: dedupe id, event type, signing time and parsed body."""

    id: str
    type: str
    timestamp: int | None
    payload: Any


class Verifier:
    """Base class: ``verify`` checks the signature, then lets the subclass parse the body."""

    #: Whether the signature covers the delivery id. When it does not (GitHub, Shopify: the id
    #: is a plain header), the receiver dedupes on the body instead, so that a captured call
    #: replayed under a fresh id still runs its handler only once.
    signs_id = True

    provider: ClassVar[str] = ""

    def __init__(self, *, tolerance: int = DEFAULT_TOLERANCE) -> None:
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            raise InvalidReceiver("tolerance must be a whole number of seconds, 0 or more")
        self.tolerance = tolerance

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> Verified:
        """Return the delivery if any secret signed it, else raise an ``InvalidSignature``."""
        secrets = _secret_list(secrets)
        body = bytes(body)
        signed_at = self.verify_signature(body, headers, secrets, now=now)
        return self.parse(body, headers, signed_at)

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> int | None:
        """Check the signature (and age); return the signed timestamp, or None if unsigned."""
        raise NotImplementedError

    def parse(self, body: bytes, headers: Mapping[str, str], timestamp: int | None) -> Verified:
        """Build the result from an already authenticated body; the default reads JSON."""
        return Verified(id="", type="", timestamp=timestamp, payload=_parse_json(body))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tolerance={self.tolerance})"


class StandardVerifier(Verifier):
    """Standard Webhooks (and Svix): ``webhook-*``/``svix-*`` headers, ``v1`` and ``v1a``."""

    provider = "standard"
    header_names = tuple(
        f"{brand}-{name}"
        for brand in ("webhook", "svix")
        for name in ("id", "timestamp", "signature")
    )

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> int | None:
        # Hand the core only the scheme's headers, stripped, so blank ones count as missing.
        wanted = {name: _header(headers, name) for name in self.header_names}
        try:
            _, signed_at = signing.verify_headers(
                secrets, wanted, body, tolerance=self.tolerance, now=now
            )
        except UnicodeEncodeError:
            # A message id that is not text cannot have been signed.
            raise MalformedHeader("webhook-id header is not valid text") from None
        return signed_at

    def parse(self, body: bytes, headers: Mapping[str, str], timestamp: int | None) -> Verified:
        payload = _parse_json(body)
        msg_id = _header(headers, "webhook-id") or _header(headers, "svix-id")
        return Verified(msg_id, _text(payload, "type"), timestamp, payload)


class GitHubVerifier(Verifier):
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` of the body; GitHub signs no timestamp."""

    provider = "github"
    signs_id = False
    header = "X-Hub-Signature-256"

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> int | None:
        value = _header(headers, self.header)
        if not value:
            if _header(headers, "X-Hub-Signature"):
                raise MissingHeader(
                    f"missing {self.header} header; the SHA-1 X-Hub-Signature is not accepted"
                )
            raise MissingHeader(f"missing {self.header} header")
        if not value.startswith("sha256="):
            raise MalformedHeader(f"{self.header} header must start with sha256=")
        digest = _unhex(value.removeprefix("sha256="), _SHA256_BYTES)
        if digest is None:
            raise MalformedHeader(f"{self.header} header is not a SHA-256 hex digest")
        _check_hmac([digest], body, _utf8_keys(secrets), hashlib.sha256)
        return None

    def parse(self, body: bytes, headers: Mapping[str, str], timestamp: int | None) -> Verified:
        # GitHub can be set to send form bodies: payload=<url-encoded JSON>.
        if body.startswith(b"payload="):
            payload = _json_field(_parse_form(body), "payload")
        else:
            payload = _parse_json(body)
        return Verified(
            _header(headers, "X-GitHub-Delivery"),
            _header(headers, "X-GitHub-Event"),
            None,
            payload,
        )


class StripeVerifier(Verifier):
    """Stripe: ``Stripe-Signature: t=...,v1=...`` over ``{t}.{body}``, keyed by the whsec_ text."""

    provider = "stripe"
    header = "Stripe-Signature"

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> int | None:
        value = _required_header(headers, self.header)
        timestamps: list[str] = []
        digests: list[bytes] = []
        for item in value.split(","):
            key, _, field = item.partition("=")
            if key == "t":
                timestamps.append(field)
            elif key == "v1" and (digest := _unhex(field, _SHA256_BYTES)) is not None:
                digests.append(digest)
            # v0 (test-mode legacy) and unknown keys are ignored, as Stripe's libraries do.
        if len(timestamps) != 1 or not timestamps[0]:
            raise MalformedHeader(f"{self.header} header needs exactly one t= timestamp")
        if not digests:
            raise MalformedHeader(f"{self.header} header has no valid v1 signature")
        signed_at = _check_timestamp(timestamps[0], self.tolerance, now)
        # Stripe's libraries sign the timestamp as an integer, so do we.
        content = b"%d." % signed_at + body
        _check_hmac(digests, content, _utf8_keys(secrets), hashlib.sha256)
        return signed_at

    def parse(self, body: bytes, headers: Mapping[str, str], timestamp: int | None) -> Verified:
        payload = _parse_json(body)
        return Verified(_text(payload, "id"), _text(payload, "type"), timestamp, payload)


class ShopifyVerifier(Verifier):
    """Shopify: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the body, no timestamp."""

    provider = "shopify"
    signs_id = False
    # Shopify's newer Events deliveries (developer preview) drop the X- prefix.
    signature_headers = ("X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256")
    id_headers = ("X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "Shopify-Webhook-Id")
    type_headers = ("X-Shopify-Topic", "Shopify-Topic")

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> int | None:
        value = _first_header(headers, self.signature_headers)
        if not value:
            raise MissingHeader(f"missing {self.signature_headers[0]} header")
        digest = _unbase64(value, _SHA256_BYTES)
        if digest is None:
            raise MalformedHeader(
                f"{self.signature_headers[0]} header is not a base64 SHA-256 digest"
            )
        _check_hmac([digest], body, _utf8_keys(secrets), hashlib.sha256)
        return None

    def parse(self, body: bytes, headers: Mapping[str, str], timestamp: int | None) -> Verified:
        return Verified(
            _first_header(headers, self.id_headers),
            _first_header(headers, self.type_headers),
            None,
            _parse_json(body),
        )


class SlackVerifier(Verifier):
    """Slack: ``X-Slack-Signature: v0=<hex>`` of ``v0:{timestamp}:{body}``.

    The type is the inner event's type for ``event_callback``, the body's ``type`` for other
    Events API requests, ``"command"`` for slash commands and the payload's ``type`` for
    interactivity. Only Events API requests carry an id (``event_id``).
    """

    provider = "slack"
    header = "X-Slack-Signature"
    timestamp_header = "X-Slack-Request-Timestamp"

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> int | None:
        value = _required_header(headers, self.header)
        raw_timestamp = _required_header(headers, self.timestamp_header)
        if not value.startswith("v0="):
            raise MalformedHeader(f"{self.header} header must start with v0=")
        digest = _unhex(value.removeprefix("v0="), _SHA256_BYTES)
        if digest is None:
            raise MalformedHeader(f"{self.header} header is not a SHA-256 hex digest")
        signed_at = _check_timestamp(raw_timestamp, self.tolerance, now)
        content = b"v0:" + raw_timestamp.encode() + b":" + body
        _check_hmac([digest], content, _utf8_keys(secrets), hashlib.sha256)
        return signed_at

    def parse(self, body: bytes, headers: Mapping[str, str], timestamp: int | None) -> Verified:
        if body.lstrip().startswith(b"{"):
            payload = _parse_json(body)
            event = payload.get("event") if isinstance(payload, dict) else None
            event_type = _text(payload, "type")
            if event_type == "event_callback" and _text(event, "type"):
                event_type = _text(event, "type")
            return Verified(_text(payload, "event_id"), event_type, timestamp, payload)
        form: dict[str, Any] = dict(_parse_form(body))
        if "payload" in form:
            form["payload"] = _json_field(form, "payload")
            return Verified("", _text(form["payload"], "type"), timestamp, form)
        return Verified("", "command" if "command" in form else "", timestamp, form)


class HMACVerifier(Verifier):
    """Any other HMAC scheme: ``header`` holds ``prefix`` + the encoded digest of the message.

    The message is ``signed_template`` with ``{body}`` (and ``{timestamp}``, the value of
    ``timestamp_header`` in unix seconds, checked against ``tolerance``) substituted as bytes.
    """

    provider = "hmac"
    signs_id = False
    ALGORITHMS: ClassVar[dict[str, Any]] = {
        "sha1": hashlib.sha1,
        "sha256": hashlib.sha256,
        "sha512": hashlib.sha512,
    }
    ENCODINGS = ("hex", "base64")

    def __init__(
        self,
        header: str,
        algorithm: str = "sha256",
        encoding: str = "hex",
        prefix: str = "",
        *,
        timestamp_header: str | None = None,
        signed_template: str = "{body}",
        id_header: str | None = None,
        type_header: str | None = None,
        tolerance: int = DEFAULT_TOLERANCE,
    ) -> None:
        super().__init__(tolerance=tolerance)
        if not isinstance(header, str) or not header.strip():
            raise InvalidReceiver("header must name the signature header")
        if algorithm not in self.ALGORITHMS:
            raise InvalidReceiver(f"algorithm must be one of {', '.join(self.ALGORITHMS)}")
        if encoding not in self.ENCODINGS:
            raise InvalidReceiver(f"encoding must be one of {', '.join(self.ENCODINGS)}")
        if re.search(r"[,\s]", prefix):
            raise InvalidReceiver(
                "prefix cannot contain commas or spaces: they separate signatures"
            )
        template = re.split(r"(\{body\}|\{timestamp\})", signed_template)
        if template.count("{body}") != 1:
            raise InvalidReceiver("signed_template must contain {body} exactly once")
        if timestamp_header and "{timestamp}" not in template:
            raise InvalidReceiver(
                "signed_template must include {timestamp} when timestamp_header is set, "
                'e.g. "{timestamp}.{body}"; an unsigned timestamp gives no replay protection'
            )
        if "{timestamp}" in template and not timestamp_header:
            raise InvalidReceiver("signed_template uses {timestamp} but no timestamp_header is set")
        self.header = header
        self.algorithm = algorithm
        self.encoding = encoding
        self.prefix = prefix
        self.timestamp_header = timestamp_header
        self.signed_template = signed_template
        self.id_header = id_header
        self.type_header = type_header
        self._digestmod = self.ALGORITHMS[algorithm]
        self._digest_size = self._digestmod().digest_size
        self._template = [piece.encode() for piece in template]

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        now: float | None = None,
    ) -> int | None:
        value = _required_header(headers, self.header)
        decode = _unhex if self.encoding == "hex" else _unbase64
        digests = [
            digest
            for item in re.split(r"[,\s]+", value)
            if item.startswith(self.prefix)
            and (digest := decode(item.removeprefix(self.prefix), self._digest_size)) is not None
        ]
        if not digests:
            raise MalformedHeader(f"{self.header} header has no valid {self.algorithm} signature")
        signed_at = None
        raw_timestamp = b""
        if self.timestamp_header:
            text = _required_header(headers, self.timestamp_header)
            signed_at = _check_timestamp(text, self.tolerance, now)
            raw_timestamp = text.encode()
        parts = {b"{body}": body, b"{timestamp}": raw_timestamp}
        content = b"".join(parts.get(piece, piece) for piece in self._template)
        _check_hmac(digests, content, _utf8_keys(secrets), self._digestmod)
        return signed_at

    def parse(self, body: bytes, headers: Mapping[str, str], timestamp: int | None) -> Verified:
        return Verified(
            _header(headers, self.id_header) if self.id_header else "",
            _header(headers, self.type_header) if self.type_header else "",
            timestamp,
            _parse_json(body),
        )

    def __repr__(self) -> str:
        return (
            f"HMACVerifier({self.header!r}, {self.algorithm!r}, {self.encoding!r}, "
            f"{self.prefix!r}, timestamp_header={self.timestamp_header!r}, "
            f"signed_template={self.signed_template!r}, tolerance={self.tolerance})"
        )


PROVIDERS: dict[str, type[Verifier]] = {
    cls.provider: cls
    for cls in (StandardVerifier, GitHubVerifier, StripeVerifier, ShopifyVerifier, SlackVerifier)
}


def get_verifier(provider: str | Verifier, *, tolerance: int = DEFAULT_TOLERANCE) -> Verifier:
    """Return the verifier for a provider name; a ``Verifier`` instance is returned as is."""
    if isinstance(provider, Verifier):
        return provider
    try:
        cls = PROVIDERS[provider]
    except (KeyError, TypeError):
        raise InvalidReceiver(
            f"unknown webhook provider {provider!r}; known: {', '.join(sorted(PROVIDERS))} "
            "(or pass a Verifier instance, e.g. HMACVerifier(...))"
        ) from None
    return cls(tolerance=tolerance)


def _header(headers: Mapping[str, str], name: str) -> str:
    """Return header ``name`` stripped, or ''; names match case-insensitively in any mapping."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next(
            (v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted), None
        )
    return value.strip() if isinstance(value, str) else ""


def _required_header(headers: Mapping[str, str], name: str) -> str:
    """Return header ``name``, or raise ``MissingHeader`` naming it."""
    value = _header(headers, name)
    if not value:
        raise MissingHeader(f"missing {name} header")
    return value


def _first_header(headers: Mapping[str, str], names: Sequence[str]) -> str:
    return next((value for name in names if (value := _header(headers, name))), "")


def _secret_list(secrets: Sequence[str]) -> list[str]:
    if isinstance(secrets, str):
        secrets = [secrets]
    if not secrets:
        raise InvalidSecret("at least one secret is required to verify")
    if not all(isinstance(secret, str) and secret for secret in secrets):
        raise InvalidSecret("each secret must be a non-empty string")
    return list(secrets)


def _utf8_keys(secrets: Sequence[str]) -> list[bytes]:
    try:
        return [secret.encode("utf-8") for secret in secrets]
    except UnicodeEncodeError:
        raise InvalidSecret("secret is not valid UTF-8 text") from None


def _unhex(text: str, size: int) -> bytes | None:
    """Decode exactly ``size`` bytes of hex; ``bytes.fromhex`` alone would allow spaces."""
    if len(text) != 2 * size or not _HEX_DIGITS.issuperset(text):
        return None
    return bytes.fromhex(text)


def _unbase64(text: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _check_timestamp(text: str, tolerance: int, now: float | None) -> int:
    # The same strict parsing and two-sided window as the Standard Webhooks core.
    signed_at = signing._parse_timestamp(text)
    signing._check_tolerance(signed_at, tolerance, time.time() if now is None else now)
    return signed_at


def _check_hmac(digests: list[bytes], content: bytes, keys: list[bytes], digestmod: Any) -> None:
    for key in keys:
        expected = hmac.new(key, content, digestmod).digest()
        if any(hmac.compare_digest(expected, digest) for digest in digests):
            return
    raise SignatureMismatch("no matching signature")


def _not_json(constant: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and PostgreSQL's jsonb) does not.
    raise ValueError(f"{constant} is not JSON")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError too
        detail = f": {exc}" if str(exc).endswith("is not JSON") else ""
        raise MalformedPayload(f"body is not valid JSON{detail}") from None


def _parse_form(body: bytes) -> dict[str, str]:
    """Parse a url-encoded body into a flat dict of first values, blanks kept (``text=``)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("body is not valid UTF-8") from None
    return {key: values[0] for key, values in parse_qs(text, keep_blank_values=True).items()}


def _json_field(form: Mapping[str, str], name: str) -> Any:
    if name not in form:
        raise MalformedPayload(f"form body has no {name} field")
    try:
        return json.loads(form[name], parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise MalformedPayload(f"{name} field is not valid JSON") from None


def _text(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""
