"""The webhook body: ``{"type", "timestamp", "data"}`` as compact UTF-8 JSON, encoded once."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from typing import Any

from django_hooks.core.errors import PayloadError

__all__: list[str] = []


def format_timestamp(value: dt.datetime) -> str:
    """ISO 8601 with microseconds; UTC is written ``Z`` as Standard Webhooks senders do."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return value.isoformat(timespec="microseconds")


class PayloadEncoder(json.JSONEncoder):
    """JSON for the types event data commonly holds: datetimes, dates, decimals, UUIDs, sets."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime):
            return format_timestamp(o)
        if isinstance(o, dt.date | dt.time):
            return o.isoformat()
        if isinstance(o, dt.timedelta):
            return o.total_seconds()
        if isinstance(o, decimal.Decimal):
            return str(o)
        if isinstance(o, uuid.UUID):
            return str(o)
        if isinstance(o, set | frozenset | tuple):
            return list(o)
        if hasattr(o, "__html__") or type(o).__name__ == "__proxy__":  # lazy translation strings
            return str(o)
        return super().default(o)


# An escaped NUL (\u0000) that is not itself an escaped backslash followed by "u0000".
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def contains_nul(encoded_json: str) -> bool:
    """Whether JSON text holds a NUL character, which PostgreSQL's JSON types cannot store."""
    return "\\u0000" in encoded_json and _NUL.search(encoded_json) is not None


_encoder = PayloadEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON; ``PayloadError`` names what could not be encoded."""
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"event data is not JSON-serializable: {exc}") from None
    if contains_nul(text):
        raise PayloadError("event data contains a NUL character (\\u0000), which cannot be stored")
    return text.encode("utf-8")


def encode_body(
    event_type: str, timestamp: dt.datetime, data: Any, *, max_bytes: int | None = None
) -> bytes:
    """The body POSTed to every endpoint, byte for byte the same on every retry."""
    body = encode_json({"type": event_type, "timestamp": format_timestamp(timestamp), "data": data})
    if max_bytes is not None and len(body) > max_bytes:
        raise PayloadError(
            f"event payload is {len(body)} bytes, "
            f"over the {max_bytes}-byte limit (MAX_PAYLOAD_BYTES)"
        )
    return body
