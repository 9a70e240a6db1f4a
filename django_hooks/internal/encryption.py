"""Secrets at rest: Fernet tokens under ``ENCRYPTION_KEYS`` (newest first).

With no keys configured, one key is derived from ``SECRET_KEY`` (and one from each of
``SECRET_KEY_FALLBACKS``, so rotating Django's key the documented way keeps secrets readable).
``python manage.py hooks_reencrypt`` rewrites every stored secret under the newest key.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import ConfigurationError, DecryptionError

__all__: list[str] = []


def derive_key(secret_key: str) -> bytes:
    """A Fernet key derived from Django's ``SECRET_KEY`` with HKDF-SHA256."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"django-hooks", info=b"secret-encryption"
    )
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def configured_keys() -> list[bytes]:
    """The keys in use, newest first; raises ``ConfigurationError`` naming a bad entry."""
    return list(_keys(*_key_settings()))


def _key_settings() -> tuple[object, tuple[str, ...]]:
    keys = hooks_settings.ENCRYPTION_KEYS
    secret_keys = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return (tuple(keys) if isinstance(keys, list | tuple) else "not a list"), secret_keys


@functools.lru_cache(maxsize=8)
def _keys(keys: object, secret_keys: tuple[str, ...]) -> tuple[bytes, ...]:
    # Cached on the settings it reads, so that a settings change needs no reset.
    if not isinstance(keys, tuple):
        raise ConfigurationError("DJANGO_HOOKS['ENCRYPTION_KEYS'] must be a list of Fernet keys.")
    if not keys:
        return tuple(derive_key(key) for key in secret_keys if key)
    result = []
    for position, key in enumerate(keys):
        raw = key.encode() if isinstance(key, str) else key
        try:
            Fernet(raw)
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"DJANGO_HOOKS['ENCRYPTION_KEYS'][{position}] is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with Fernet.generate_key())."
            ) from None
        result.append(raw)
    return tuple(result)


@functools.lru_cache(maxsize=8)
def _ciphers(keys: tuple[bytes, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise ConfigurationError(
            "No encryption key: set SECRET_KEY or DJANGO_HOOKS['ENCRYPTION_KEYS']."
        )
    fernets = [Fernet(key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def _fernet() -> MultiFernet:
    return _ciphers(_keys(*_key_settings()))[0]


def _newest() -> Fernet:
    return _ciphers(_keys(*_key_settings()))[1]


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            "A stored secret cannot be decrypted with any ENCRYPTION_KEYS entry "
            "(keep retired keys at the end of the list until hooks_reencrypt has run)."
        ) from None


def is_current(token: str) -> bool:
    """Whether ``token`` is already encrypted under the newest key."""
    try:
        _newest().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError, IndexError):
        return False
    return True


def reencrypt(token: str) -> str:
    """The same secret under the newest key."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise DecryptionError("A stored secret cannot be decrypted with any key.") from None
