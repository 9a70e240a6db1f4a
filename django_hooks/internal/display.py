"""How the admin and the portal show things: one time format everywhere."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.html import format_html

__all__: list[str] = []

TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def time_text(value: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    """``value`` in the current time zone (or ``tz``) as ``TIME_FORMAT``."""
    if timezone.is_aware(value):
        value = timezone.localtime(value, tz)
    return value.strftime(TIME_FORMAT).strip()


def show_time(value: dt.datetime | None) -> str:
    """``value`` as a ``<time>`` element in ``TIME_FORMAT``; a dash when unset."""
    if value is None:
        return "—"
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), time_text(value))
