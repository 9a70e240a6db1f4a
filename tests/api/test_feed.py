"""The pull feed: cursor order and completeness under late commits, long polling, SSE."""

from __future__ import annotations

import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, connections, transaction
from django.test import AsyncClient, override_settings
from django.test.utils import CaptureQueriesContext

import django_hooks
from django_hooks.api import feed
from django_hooks.models import Event
from tests.api.conftest import API, client_for

pytestmark = pytest.mark.django_db(transaction=True)

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises writers: two open write transactions cannot exist",
)


def follow(client, cursor="", **params):
    """Read the feed from ``cursor`` until a short page; return (ids, next cursor)."""
    seen = []
    while True:
        page = client.get(API + "events/feed/", {"after": cursor, **params}).json()
        seen += [event["id"] for event in page["data"]]
        cursor = page["next"]
        if not page["has_more"]:
            return seen, cursor


def test_the_feed_serves_events_oldest_first_with_cursors(as_alice, alice, bob, time_travel):
    sent = [django_hooks.send_event("order.paid", {"n": n}, owner=alice).pk for n in range(5)]
    django_hooks.send_event("order.paid", {"n": "bob's"}, owner=bob)
    django_hooks.send_event("invoice.sent", {}, owner=alice)
    time_travel.advance(1)
    page = as_alice.get(API + "events/feed/", {"limit": 2, "types": "order.*"}).json()
    assert [e["id"] for e in page["data"]] == sent[:2] and page["has_more"]
    assert page["data"][0]["data"] == {"n": 0}
    assert page["data"][0]["cursor"] == page["data"][0]["cursor"].upper()
    rest, cursor = follow(as_alice, page["next"], limit=2, types="order.*")
    assert rest == sent[2:]
    assert follow(as_alice, cursor, types="order.*")[0] == []
    assert len(follow(as_alice)[0]) == 6  # both types, Alice's only


def test_after_now_skips_the_history(as_alice, alice, time_travel):
    django_hooks.send_event("order.paid", {}, owner=alice)
    time_travel.advance(1)
    page = as_alice.get(API + "events/feed/", {"after": "now"}).json()
    assert page["data"] == []
    newer = django_hooks.send_event("order.paid", {}, owner=alice)
    time_travel.advance(1)
    assert follow(as_alice, page["next"])[0] == [newer.pk]


def test_the_feed_waits_for_the_visibility_lag(as_alice, alice, time_travel):
    event = django_hooks.send_event("order.paid", {}, owner=alice)
    assert follow(as_alice)[0] == []
    time_travel.advance(feed.lag() + 0.01)
    assert follow(as_alice)[0] == [event.pk]


def test_bad_feed_parameters_are_400(as_alice):
    for params, field in [
        ({"after": "msg_nope"}, "after"),
        ({"limit": 0}, "limit"),
        ({"wait": 31}, "wait"),
        ({"types": "order..paid"}, "types"),
    ]:
        response = as_alice.get(API + "events/feed/", params)
        assert response.status_code == 400 and field in response.json(), params


def test_an_event_that_commits_late_is_not_missed(as_alice, alice, time_travel):
    """The event made first (lower position) commits after a consumer read past it."""
    late = Event(type="order.paid", data={"which": "late"})  # position made now
    late.owner = alice
    early = django_hooks.send_event("order.paid", {"which": "early"}, owner=alice)
    time_travel.advance(2)
    seen, cursor = follow(as_alice)
    assert seen == [early.pk]
    with transaction.atomic():
        late.save(force_insert=True)  # commits 2 s after its position was made
    time_travel.advance(2)
    more, _ = follow(as_alice, cursor)
    assert more == [late.pk]
    # It was moved above the cursor the consumer held; an on-time event is never moved.
    assert Event.objects.get(pk=late.pk).feed_position > cursor
    assert Event.objects.get(pk=early.pk).feed_position == early.feed_position


def test_one_transaction_of_events_costs_one_update_and_one_publish_per_owner(
    alice, bob, redis, time_travel
):
    """After commit, the late events of a transaction are moved by one UPDATE, and each owner's
    readers are woken by one PUBLISH carrying the newest position, however many events."""
    pubsub = redis.pubsub()
    pubsub.subscribe(feed.owner_channel(alice), feed.owner_channel(bob))
    owners = [bob if n % 3 == 0 else alice for n in range(30)]
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            events = [django_hooks.send_event("order.paid", {}, owner=owner) for owner in owners]
            time_travel.advance(2)  # the transaction commits 2 s after its first position
    moves = [q for q in queries if q["sql"].startswith("UPDATE") and "feed_position" in q["sql"]]
    assert len(moves) == 1
    positions = dict(Event.objects.values_list("pk", "feed_position"))
    assert all(positions[e.pk] > e.feed_position for e in events), "every late event moved"
    published = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            published.append((message["channel"].decode(), message["data"].decode()))
    newest = {}
    for owner, event in zip(owners, events, strict=True):
        channel = feed.owner_channel(owner)
        newest[channel] = max(newest.get(channel, ""), positions[event.pk])
    assert sorted(published) == sorted(newest.items())


def test_a_site_without_the_feed_pays_nothing_for_it_per_commit(alice, redis, time_travel):
    """``FEED: False``: no position moves, no publish, only the wake-up per commit."""
    from django.conf import settings

    pubsub = redis.pubsub()
    pubsub.subscribe(feed.owner_channel(alice))
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    with override_settings(DJANGO_HOOKS={**settings.DJANGO_HOOKS, "FEED": False}):
        with CaptureQueriesContext(connection) as queries:
            with transaction.atomic():
                event = django_hooks.send_event("order.paid", {}, owner=alice)
                time_travel.advance(2)  # late: with the feed on, this event would move
    assert not [q for q in queries if q["sql"].startswith("UPDATE")]
    assert Event.objects.get(pk=event.pk).feed_position == event.feed_position
    assert pubsub.get_message(timeout=0.3) is None
    with transaction.atomic():  # and on again (the default: rest_framework is installed)
        django_hooks.send_event("order.paid", {}, owner=alice)
    assert pubsub.get_message(timeout=1)["type"] == "message"


def test_events_that_commit_in_time_are_not_moved(alice, redis, time_travel):
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            events = [django_hooks.send_event("order.paid", {}, owner=alice) for _ in range(5)]
    assert not [q for q in queries if "feed_position" in q["sql"] and q["sql"].startswith("UPDATE")]
    positions = dict(Event.objects.values_list("pk", "feed_position"))
    assert all(positions[e.pk] == e.feed_position for e in events)


@on_postgres
def test_two_transactions_committing_out_of_order_are_both_seen(as_alice, alice, time_travel):
    """Real concurrency on PostgreSQL: A is recorded first, B commits first, then A."""
    recorded, release = threading.Event(), threading.Event()
    first = {}

    def slow_transaction():
        try:
            with transaction.atomic():
                first["event"] = django_hooks.send_event("order.paid", {"tx": "A"}, owner=alice)
                recorded.set()
                assert release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    assert recorded.wait(10)
    second = django_hooks.send_event("order.paid", {"tx": "B"}, owner=alice)
    assert first["event"].feed_position < second.feed_position  # A is older
    time_travel.advance(2)
    seen, cursor = follow(as_alice)
    assert seen == [second.pk]  # A is not committed yet
    release.set()
    thread.join(10)
    time_travel.advance(2)
    more, _ = follow(as_alice, cursor)
    assert more == [first["event"].pk]


def wait_for_subscriber(redis, channel, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dict(redis.pubsub_numsub(channel)).get(channel.encode(), 0):
            # The reader subscribed; let it finish its re-read before this thread writes
            # (SQLite's shared in-memory database refuses a write during a read).
            time.sleep(0.2)
            return
        time.sleep(0.01)
    raise TimeoutError("the long poll never subscribed")


def test_a_long_poll_wakes_when_an_event_commits(alice, redis):
    client = client_for(alice)
    cursor = follow(client)[1]
    result = {}

    def poll():
        try:
            response = client.get(API + "events/feed/", {"after": cursor, "wait": 20})
            result["answered"] = time.monotonic()
            result["body"] = response.json()
        finally:
            connections.close_all()

    thread = threading.Thread(target=poll)
    thread.start()
    wait_for_subscriber(redis, feed.owner_channel(alice))
    committed = time.monotonic()
    event = django_hooks.send_event("order.paid", {}, owner=alice)
    thread.join(25)
    assert [e["id"] for e in result["body"]["data"]] == [event.pk]
    woke_after = result["answered"] - committed
    # Far sooner than the 20 s wait or the 10 s safety-net query: the wake-up did it.
    assert woke_after < feed.RECHECK / 2, woke_after
    print(f"long poll answered {woke_after:.3f} s after the commit")


def test_a_long_poll_ignores_other_owners_and_returns_empty_after_the_wait(
    as_alice, alice, bob, redis
):
    cursor = follow(as_alice)[1]
    django_hooks.send_event("order.paid", {}, owner=bob)
    started = time.monotonic()
    page = as_alice.get(API + "events/feed/", {"after": cursor, "wait": 1}).json()
    assert time.monotonic() - started >= 1
    assert page["data"] == [] and page["next"] >= cursor


def parse_sse(body: str):
    """[(id, event, data)] and the comment lines of a server-sent events body."""
    events, comments = [], []
    for block in body.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
        if "data" in fields:
            data = json.loads(fields["data"])
            events.append((fields["id"], data["type"], data))
    return events, comments


STREAM = {"ALLOWED_NETWORKS": ["127.0.0.0/8"], "FEED_STREAM_LIFETIME": 1, "FEED_HEARTBEAT": 0.3}


def test_the_stream_resumes_from_last_event_id_with_exactly_the_missed_events(
    as_alice, alice, bob, redis, time_travel
):
    first = [django_hooks.send_event("order.paid", {"n": n}, owner=alice) for n in range(2)]
    django_hooks.send_event("order.paid", {}, owner=bob)
    time_travel.advance(1)
    with override_settings(DJANGO_HOOKS=STREAM):
        response = as_alice.get(API + "events/stream/", HTTP_ACCEPT="text/event-stream")
        assert response["Content-Type"].startswith("text/event-stream")
        assert response.streaming and not response.is_async
        events, comments = parse_sse(b"".join(response.streaming_content).decode())
    assert [data["id"] for _, _, data in events] == [e.pk for e in first]
    assert [kind for _, kind, _ in events] == ["order.paid", "order.paid"]
    assert "heartbeat" in comments
    last_id = events[-1][0]

    missed = [django_hooks.send_event("order.paid", {"n": n}, owner=alice) for n in (2, 3)]
    time_travel.advance(1)
    with override_settings(DJANGO_HOOKS=STREAM):
        response = as_alice.get(API + "events/stream/", HTTP_LAST_EVENT_ID=last_id)
        events, _ = parse_sse(b"".join(response.streaming_content).decode())
    assert [data["id"] for _, _, data in events] == [e.pk for e in missed]
    assert events[0][0] == missed[0].feed_position


def test_the_stream_delivers_an_event_committed_while_it_is_open(alice, redis):
    client = client_for(alice)
    settings = {**STREAM, "FEED_STREAM_LIFETIME": 3, "FEED_HEARTBEAT": 10}
    chunks = []

    def listen():
        try:
            with override_settings(DJANGO_HOOKS=settings):
                response = client.get(API + "events/stream/")
                for chunk in response.streaming_content:
                    chunks.append((time.monotonic(), chunk.decode()))
        finally:
            connections.close_all()

    thread = threading.Thread(target=listen)
    thread.start()
    wait_for_subscriber(redis, feed.owner_channel(alice))
    committed = time.monotonic()
    event = django_hooks.send_event("order.paid", {}, owner=alice)
    thread.join(10)
    [arrived] = [t for t, c in chunks if event.pk in c]
    assert arrived - committed < 2, arrived - committed


def test_the_stream_works_under_asgi_and_resumes(alice, redis, time_travel):
    sent = [django_hooks.send_event("order.paid", {"n": n}, owner=alice) for n in range(3)]
    time_travel.advance(1)

    async def read(headers):
        client = AsyncClient()
        await client.aforce_login(alice)
        response = await client.get(API + "events/stream/", headers=headers)
        assert response["Content-Type"].startswith("text/event-stream")
        assert response.is_async
        body = "".join([chunk.decode() async for chunk in response.streaming_content])
        return parse_sse(body)

    with override_settings(DJANGO_HOOKS=STREAM):
        events, _ = async_to_sync(read)({"Last-Event-ID": sent[0].feed_position})
    assert [data["id"] for _, _, data in events] == [e.pk for e in sent[1:]]


def test_an_asgi_stream_is_woken_by_a_commit(alice, redis):
    settings = {**STREAM, "FEED_STREAM_LIFETIME": 3, "FEED_HEARTBEAT": 10}
    chunks = []

    async def listen():
        client = AsyncClient()
        await client.aforce_login(alice)
        response = await client.get(API + "events/stream/")
        async for chunk in response.streaming_content:
            chunks.append((time.monotonic(), chunk.decode()))

    def run():
        try:
            with override_settings(DJANGO_HOOKS=settings):
                async_to_sync(listen)()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for_subscriber(redis, feed.owner_channel(alice))  # subscribed with asyncio Redis
    committed = time.monotonic()
    event = django_hooks.send_event("order.paid", {}, owner=alice)
    thread.join(10)
    [arrived] = [t for t, c in chunks if event.pk in c]
    assert arrived - committed < 2, arrived - committed


def test_a_bad_last_event_id_is_400(as_alice):
    response = as_alice.get(API + "events/stream/", HTTP_LAST_EVENT_ID="garbage")
    assert response.status_code == 400 and "after" in response.json()
