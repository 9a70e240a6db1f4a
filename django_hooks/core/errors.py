"""Exceptions raised by the pure core; ``django_hooks.exceptions`` re-exports them."""

from __future__ import annotations

__all__ = [
    "HooksError",
    "InvalidCredentials",
    "InvalidSecret",
    "InvalidSignature",
    "MalformedHeader",
    "MalformedPayload",
    "MissingHeader",
    "PayloadError",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
    "UnsafeURL",
]


class HooksError(Exception):
    """Base class of every error django-hooks raises on purpose."""


class InvalidSecret(HooksError, ValueError):
    """A signing secret or key is malformed (wrong prefix, bad base64, wrong length)."""


class InvalidCredentials(HooksError, ValueError):
    """A receiver credential is malformed; the message names the part, never its value."""


class PayloadError(HooksError, ValueError):
    """Event data cannot be encoded, or is larger than allowed."""


class UnsafeURL(HooksError, ValueError):
    """A webhook URL, or the address it resolves to, may not be targeted (SSRF guard)."""


class InvalidReceiver(HooksError, ValueError):
    """A verifier was built with options that cannot work: an unknown provider, a negative
    tolerance, an ``HMACVerifier`` whose header, encoding or template is wrong."""


class InvalidSignature(HooksError):
    """A webhook failed verification. ``reason`` says why, in words safe to return to the sender."""

    status_code = 401

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingHeader(InvalidSignature):
    """A header the scheme requires is absent."""

    status_code = 400


class MalformedHeader(InvalidSignature):
    """A header is present but cannot be parsed."""

    status_code = 400


class MalformedPayload(InvalidSignature):
    """The signature is valid but the body is not what the scheme promises (e.g. not JSON)."""

    status_code = 400


class TimestampOutOfTolerance(InvalidSignature):
    """The signed timestamp is too old or too far in the future (a possible replay)."""


class SignatureMismatch(InvalidSignature):
    """No signature in the header matches any of the secrets."""
