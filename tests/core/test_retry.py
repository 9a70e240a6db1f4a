import random

import pytest

from django_hooks.core.retry import Outcome, classify, next_retry_delay, parse_retry_after

SCHEDULE = [5, 300, 1800]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCEEDED),
        (204, Outcome.SUCCEEDED),
        (299, Outcome.SUCCEEDED),
        (301, Outcome.RETRY),
        (400, Outcome.RETRY),
        (410, Outcome.GONE),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (None, Outcome.RETRY),
        (199, Outcome.RETRY),
    ],
)
def test_classify(status, outcome):
    assert classify(status) is outcome


def test_each_schedule_entry_is_one_retry_with_jitter():
    rng = random.Random(1)
    for attempt, base in enumerate(SCHEDULE, start=1):
        delays = [next_retry_delay(attempt, SCHEDULE, rng=rng) for _ in range(200)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert max(delays) - min(delays) > 0.2 * base  # jitter actually spreads them
    assert next_retry_delay(len(SCHEDULE) + 1, SCHEDULE) is None
    assert next_retry_delay(0, SCHEDULE) is None


@pytest.mark.parametrize(("retry_after", "expected"), [(1, 300), (450, 450), (10_000, 600)])
def test_retry_after_is_clamped_between_base_and_twice_base(retry_after, expected):
    assert next_retry_delay(2, SCHEDULE, retry_after=retry_after) == expected


def test_parse_retry_after():
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 + 60) == 0


@pytest.mark.parametrize(
    "value",
    [
        "²",
        "１２０",
        "1²",
        "9" * 400,
        "Wed, 99 Foo 2026 99:99:99 GMT",
        "\x00",
        "-1",
        "1.5",
        "Sun, 06 Nov 1994 08:49:37",
    ],
)
def test_parse_retry_after_refuses_what_is_not_http_and_never_raises(value):
    assert parse_retry_after(value) is None
