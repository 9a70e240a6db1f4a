"""Time-sortable identifiers: a prefix and a ULID (48-bit milliseconds + 80 random bits, base32)."""

from __future__ import annotations

import os
import threading
import time

__all__: list[str] = []

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U


def clock() -> float:
    """Seconds since the epoch, for ids and the event feed (one function tests can move)."""
    return time.time()


_lock = threading.Lock()
_last = 0  # the last value made in this process: ids made in one millisecond keep their order


def new_id(prefix: str = "msg_", *, now: float | None = None) -> str:
    """Return ``prefix`` + 26 characters that sort by creation time (to the millisecond; in
    creation order within one process, as monotonic ULIDs do)."""
    global _last
    millis = int((clock() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    with _lock:
        if now is None and value >> 80 == _last >> 80 and value <= _last:
            value = _last + 1 + (int.from_bytes(os.urandom(4), "big") >> 8)
            if value >> 80 != millis:  # the random part ran out: vanishingly rare
                value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
        if now is None:
            _last = value
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return prefix + "".join(reversed(chars))


def id_timestamp(identifier: str) -> float:
    """Seconds since the epoch encoded in an id made by ``new_id``."""
    value = 0
    for char in identifier[-26:]:
        value = value * 32 + _ALPHABET.index(char)
    return (value >> 80) / 1000


def first_id_at(now: float, prefix: str = "") -> str:
    """The smallest id ``new_id`` can make at ``now``: every id made later sorts after it."""
    value = int(now * 1000) << 80
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return prefix + "".join(reversed(chars))
