"""Argument types shared by the hooks_* commands: durations ("90d", "12h") and moments
(ISO 8601, or a duration ago)."""

from __future__ import annotations

import argparse
import datetime as dt
import re

from django.utils import timezone
from django.utils.dateparse import parse_datetime

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")


def duration(value: str) -> dt.timedelta:
    """``"90d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"`` or a number of seconds."""
    match = DURATION_RE.match(value.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration: use a number with s, m, h, d or w, e.g. 90d or 12h."
        )
    return dt.timedelta(seconds=float(match[1]) * UNITS[match[2] or "s"])


def moment(value: str) -> dt.datetime:
    """An ISO 8601 date-time (naive ones in the current time zone), or a duration ago."""
    if DURATION_RE.match(value.strip().lower()):
        return timezone.now() - duration(value)
    when = parse_datetime(value.strip())
    if when is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an ISO 8601 date-time (2026-11-22T00:00:00Z) nor a "
            "duration ago (24h)."
        )
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    return when
