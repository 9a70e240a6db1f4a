"""Standard Webhooks signing and verification (https://www.standardwebhooks.com).

Symmetric ``v1`` signatures are HMAC-SHA256 under a ``whsec_`` secret; asymmetric ``v1a``
signatures are Ed25519 under a ``whsk_`` signing key, checked with its ``whpk_`` public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature as _BadEd25519Signature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from django_hooks.core.errors import (
    InvalidSecret,
    MalformedHeader,
    MissingHeader,
    SignatureMismatch,
    TimestampOutOfTolerance,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "PUBLIC_KEY_PREFIX",
    "SECRET_PREFIX",
    "SIGNING_KEY_PREFIX",
    "Signer",
    "decode_secret",
    "generate_secret",
    "generate_signing_key",
    "public_key_for",
    "sign",
    "signature_header",
    "verify",
    "verify_headers",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
DEFAULT_TOLERANCE = 300

MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
_ED25519_KEY_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64
_MAX_TIMESTAMP_DIGITS = 15

_ID_HEADERS = ("webhook-id", "svix-id")
_TIMESTAMP_HEADERS = ("webhook-timestamp", "svix-timestamp")
_SIGNATURE_HEADERS = ("webhook-signature", "svix-signature")

_SigningKey = bytes | Ed25519PrivateKey


def generate_secret(nbytes: int = 32) -> str:
    """Return a new random ``whsec_`` secret of ``nbytes`` bytes (the spec allows 24 to 64)."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"nbytes must be between {MIN_SECRET_BYTES} and {MAX_SECRET_BYTES}")
    return SECRET_PREFIX + _b64encode(_secrets.token_bytes(nbytes))


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_`` secret (bare base64 too, like the spec libraries)."""
    if not isinstance(secret, str):
        raise InvalidSecret("secret must be a string")
    if secret.startswith((SIGNING_KEY_PREFIX, PUBLIC_KEY_PREFIX)):
        raise InvalidSecret(f"expected a {SECRET_PREFIX} secret, got an Ed25519 key")
    key = _b64decode(secret.removeprefix(SECRET_PREFIX), "secret")
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"secret must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes, got {len(key)}"
        )
    return key


def generate_signing_key() -> tuple[str, str]:
    """Return a new Ed25519 pair as (``whsk_`` signing key, ``whpk_`` public key)."""
    private_key = Ed25519PrivateKey.generate()
    # We emit the 32-byte seed, as the spec's Go library does; seed+public (64) is also accepted.
    return (
        SIGNING_KEY_PREFIX + _b64encode(private_key.private_bytes_raw()),
        _public_key_string(private_key.public_key()),
    )


def public_key_for(signing_key: str) -> str:
    """Return the ``whpk_`` public key receivers need to check ``signing_key``'s signatures."""
    return _public_key_string(_load_signing_key(signing_key).public_key())


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one signature: ``v1,...`` (HMAC), or ``v1a,...`` (Ed25519) for a ``whsk_`` key."""
    return _signature(_load_key_for_signing(secret), _signed_content(msg_id, timestamp, body))


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` value, one signature per secret so keys rotate smoothly."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return Signer(keys).header(msg_id, timestamp, body)


class Signer:
    """Signs many messages with the same secrets, decoding the keys only once."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if isinstance(secrets, str):
            secrets = [secrets]
        if not secrets:
            raise InvalidSecret("at least one secret is required to sign")
        self._keys: tuple[_SigningKey, ...] = tuple(_load_key_for_signing(s) for s in secrets)

    def header(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """Return the space-separated signatures of this message, one per secret, in order."""
        content = _signed_content(msg_id, timestamp, body)
        return " ".join([_signature(key, content) for key in self._keys])


def verify(
    secrets: str | Sequence[str],
    msg_id: str,
    timestamp: str | int,
    body: bytes,
    signature_header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a webhook's signature and age; return its timestamp or raise an InvalidSignature."""
    hmac_keys, public_keys = _verification_keys(secrets)
    if not msg_id:
        raise MissingHeader("missing message id")
    signed_at = _parse_timestamp(timestamp)
    _check_tolerance(signed_at, tolerance, time.time() if now is None else now)
    if not signature_header:
        raise MissingHeader("missing signature")
    signatures = _parse_signature_header(signature_header)
    if not signatures:
        raise MalformedHeader("no valid signature in header")
    content = _signed_content(msg_id, signed_at, body)
    if _any_signature_matches(signatures, content, hmac_keys, public_keys):
        return signed_at
    raise SignatureMismatch("no matching signature")


def verify_headers(
    secrets: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> tuple[str, int]:
    """Verify from ``webhook-*`` (or Svix's ``svix-*``) headers; return (message id, timestamp)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = _required_header(lowered, _ID_HEADERS)
    timestamp = _required_header(lowered, _TIMESTAMP_HEADERS)
    header = _required_header(lowered, _SIGNATURE_HEADERS)
    signed_at = verify(secrets, msg_id, timestamp, body, header, tolerance=tolerance, now=now)
    return msg_id, signed_at


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(data: str, what: str) -> bytes:
    """Decode strict standard base64, tolerating missing padding as the reference library does."""
    if not data:
        raise InvalidSecret(f"{what} is empty")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret(f"{what} is not valid base64") from None


def _load_signing_key(signing_key: str) -> Ed25519PrivateKey:
    if not isinstance(signing_key, str) or not signing_key.startswith(SIGNING_KEY_PREFIX):
        raise InvalidSecret(f"signing key must start with {SIGNING_KEY_PREFIX}")
    raw = _b64decode(signing_key.removeprefix(SIGNING_KEY_PREFIX), "signing key")
    if len(raw) not in (_ED25519_KEY_BYTES, 2 * _ED25519_KEY_BYTES):
        raise InvalidSecret(f"signing key must decode to 32 or 64 bytes, got {len(raw)}")
    private_key = Ed25519PrivateKey.from_private_bytes(raw[:_ED25519_KEY_BYTES])
    if len(raw) > _ED25519_KEY_BYTES and raw[_ED25519_KEY_BYTES:] != _raw_public(private_key):
        raise InvalidSecret("signing key's public half does not match its seed")
    return private_key


def _load_public_key(public_key: str) -> Ed25519PublicKey:
    raw = _b64decode(public_key.removeprefix(PUBLIC_KEY_PREFIX), "public key")
    if len(raw) != _ED25519_KEY_BYTES:
        raise InvalidSecret(f"public key must decode to 32 bytes, got {len(raw)}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InvalidSecret("public key is not a valid Ed25519 key") from None


def _raw_public(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


def _public_key_string(public_key: Ed25519PublicKey) -> str:
    return PUBLIC_KEY_PREFIX + _b64encode(public_key.public_bytes_raw())


def _load_key_for_signing(secret: str) -> _SigningKey:
    if isinstance(secret, str) and secret.startswith(SIGNING_KEY_PREFIX):
        return _load_signing_key(secret)
    if isinstance(secret, str) and secret.startswith(PUBLIC_KEY_PREFIX):
        raise InvalidSecret(f"a {PUBLIC_KEY_PREFIX} public key cannot sign; use the signing key")
    return decode_secret(secret)


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def _signature(key: _SigningKey, content: bytes) -> str:
    if isinstance(key, bytes):
        return "v1," + _b64encode(hmac.new(key, content, hashlib.sha256).digest())
    return "v1a," + _b64encode(key.sign(content))


def _verification_keys(
    secrets: str | Sequence[str],
) -> tuple[list[bytes], list[Ed25519PublicKey]]:
    """Split secrets into HMAC keys and Ed25519 public keys; a bad one is the site's error."""
    if isinstance(secrets, str):
        secrets = [secrets]
    if not secrets:
        raise InvalidSecret("at least one secret is required to verify")
    hmac_keys: list[bytes] = []
    public_keys: list[Ed25519PublicKey] = []
    for secret in secrets:
        if isinstance(secret, str) and secret.startswith(PUBLIC_KEY_PREFIX):
            public_keys.append(_load_public_key(secret))
        elif isinstance(secret, str) and secret.startswith(SIGNING_KEY_PREFIX):
            public_keys.append(_load_signing_key(secret).public_key())
        else:
            hmac_keys.append(decode_secret(secret))
    return hmac_keys, public_keys


def _parse_timestamp(timestamp: str | int) -> int:
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        if timestamp < 0:
            raise MalformedHeader("invalid timestamp")
        return timestamp
    if timestamp == "":
        raise MissingHeader("missing timestamp")
    if (
        not isinstance(timestamp, str)
        or len(timestamp) > _MAX_TIMESTAMP_DIGITS
        or not (timestamp.isascii() and timestamp.isdigit())
    ):
        raise MalformedHeader("invalid timestamp")
    return int(timestamp)


def _check_tolerance(signed_at: int, tolerance: int, now: float) -> None:
    if now - signed_at > tolerance:
        raise TimestampOutOfTolerance("timestamp too old")
    if signed_at - now > tolerance:
        raise TimestampOutOfTolerance("timestamp too far in the future")


def _parse_signature_header(header: str) -> list[tuple[str, bytes]]:
    """Return the (version, signature) items that parse; the spec says to skip the rest."""
    parsed: list[tuple[str, bytes]] = []
    for item in header.split():
        version, _, encoded = item.partition(",")
        if not version or not encoded:
            continue
        try:
            parsed.append((version, base64.b64decode(encoded, validate=True)))
        except (binascii.Error, ValueError):
            continue
    return parsed


def _any_signature_matches(
    signatures: list[tuple[str, bytes]],
    content: bytes,
    hmac_keys: list[bytes],
    public_keys: list[Ed25519PublicKey],
) -> bool:
    expected = [hmac.new(key, content, hashlib.sha256).digest() for key in hmac_keys]
    for version, signature in signatures:
        if version == "v1":
            if any(hmac.compare_digest(signature, digest) for digest in expected):
                return True
        elif version == "v1a" and len(signature) == _ED25519_SIGNATURE_BYTES:
            for public_key in public_keys:
                try:
                    public_key.verify(signature, content)
                except _BadEd25519Signature:
                    continue
                return True
    return False


def _required_header(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = headers.get(name)
        if value:
            return value
    raise MissingHeader(f"missing {names[0]} header")
