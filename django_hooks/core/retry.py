"""When to try a delivery again, and what a response means."""

from __future__ import annotations

import email.utils
import enum
import random
import time
from collections.abc import Sequence

__all__: list[str] = []

JITTER = 0.2


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"  # 2xx
    GONE = "gone"  # 410: the receiver asks us to stop; the endpoint is disabled
    RETRY = "retry"  # anything else: 3xx (never followed), 4xx, 5xx, timeouts, network errors


def classify(status_code: int | None) -> Outcome:
    """The outcome of one attempt from its status code (``None``: no response at all)."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.SUCCEEDED
    if status_code == 410:
        return Outcome.GONE
    return Outcome.RETRY


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    if not value.isascii():  # "²" and "１２０" pass str.isdigit() but are no HTTP delta-seconds
        return None
    if value.isdigit():
        return float(value) if len(value) <= 12 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def next_retry_delay(
    attempts: int,
    schedule: Sequence[float],
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait after ``attempts`` failed attempts, or ``None`` when retries are used up.

    Each schedule entry is one retry, jittered by ±20% so that a recovering receiver is not hit
    by every delivery at once. A receiver's ``Retry-After`` is honoured within [base, 2 × base].
    """
    if attempts < 1 or attempts > len(schedule):
        return None
    base = float(schedule[attempts - 1])
    if retry_after is not None:
        return min(max(retry_after, base), 2 * base)
    return base * (rng or random).uniform(1 - JITTER, 1 + JITTER)
