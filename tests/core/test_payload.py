import datetime as dt
import decimal
import json
import uuid

import pytest

from django_hooks.core.errors import PayloadError
from django_hooks.core.ids import id_timestamp, new_id
from django_hooks.core.payload import encode_body, format_timestamp

WHEN = dt.datetime(2026, 11, 22, 3, 4, 5, 123456, tzinfo=dt.UTC)


def test_body_is_compact_utf8_json_with_type_timestamp_and_data():
    body = encode_body("order.paid", WHEN, {"id": 42, "name": "café"})
    assert (
        body
        == '{"type":"order.paid","timestamp":"2026-11-22T03:04:05.123456Z","data":{"id":42,"name":"café"}}'.encode()
    )


def test_common_python_types_are_encoded():
    ident = uuid.uuid4()
    data = {
        "total": decimal.Decimal("9.90"),
        "at": WHEN,
        "day": WHEN.date(),
        "ref": ident,
        "tags": ("a",),
    }
    decoded = json.loads(encode_body("t", WHEN, data))["data"]
    assert decoded == {
        "total": "9.90",
        "at": "2026-11-22T03:04:05.123456Z",
        "day": "2026-11-22",
        "ref": str(ident),
        "tags": ["a"],
    }


def test_timestamps_are_converted_to_utc():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_timestamp(WHEN.astimezone(plus_two)) == "2026-11-22T03:04:05.123456Z"


@pytest.mark.parametrize("data", [{"x": object()}, {"x": float("nan")}, {"x": {1, object()}}])
def test_unserializable_data_is_a_payload_error(data):
    with pytest.raises(PayloadError, match="not JSON-serializable"):
        encode_body("t", WHEN, data)


def test_oversized_payload_is_refused_with_its_size():
    with pytest.raises(PayloadError, match=r"over the 100-byte limit"):
        encode_body("t", WHEN, {"x": "a" * 200}, max_bytes=100)


def test_ids_are_prefixed_unique_and_time_sortable():
    earlier = new_id("msg_", now=1_700_000_000.000)
    later = new_id("msg_", now=1_700_000_000.001)
    assert earlier.startswith("msg_") and len(earlier) == 30
    assert earlier < later
    assert id_timestamp(earlier) == pytest.approx(1_700_000_000.0)
    assert len({new_id() for _ in range(1000)}) == 1000
