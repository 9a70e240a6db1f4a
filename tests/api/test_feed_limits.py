"""Issue 15, item 5: long polls and event streams are capped per owner, counted across processes
in Redis, and none holds a database connection while it waits."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, connections
from django.test import AsyncClient, override_settings

from django_hooks.api import feed
from tests.api.conftest import API, client_for

pytestmark = pytest.mark.django_db(transaction=True)

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="counts connections in pg_stat_activity"
)

CAP = {"FEED_CONNECTIONS_PER_OWNER": 2, "FEED_STREAM_LIFETIME": 5, "FEED_HEARTBEAT": 10}


def slots_key(owner) -> str:
    return feed.SLOTS_PREFIX + feed.owner_channel(owner).removeprefix(feed.CHANNEL_PREFIX)


def assert_refused(response, limit):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= feed.SLOT_LEASE
    body = response.json()
    assert body["code"] == "too_many_waiters" and body["limit"] == limit
    assert f"at most {limit} long polls and event streams" in body["detail"]


def test_one_owner_gets_at_most_the_cap_of_streams_then_429(as_alice, alice, bob, redis):
    with override_settings(DJANGO_HOOKS=CAP):
        held = [as_alice.get(API + "events/stream/") for _ in range(2)]
        assert [r.status_code for r in held] == [200, 200]
        assert_refused(as_alice.get(API + "events/stream/"), 2)
        assert_refused(as_alice.get(API + "events/feed/", {"wait": 5}), 2)  # long polls count
        assert as_alice.get(API + "events/feed/").status_code == 200  # no wait: not counted
        # Another owner is not held back by Alice's streams.
        bobs = client_for(bob).get(API + "events/stream/")
        assert bobs.status_code == 200
        # A stream's slot is given back when its response is closed, even unread.
        held[0].close()
        again = as_alice.get(API + "events/stream/")
        assert again.status_code == 200
        for response in (held[1], bobs, again):
            response.close()
    assert redis.zcard(slots_key(alice)) == 0


def test_a_finished_long_poll_gives_its_slot_back(as_alice, alice, redis):
    with override_settings(DJANGO_HOOKS={**CAP, "FEED_CONNECTIONS_PER_OWNER": 1}):
        for _ in range(3):
            assert as_alice.get(API + "events/feed/", {"wait": 0.2}).status_code == 200
    assert redis.zcard(slots_key(alice)) == 0


def test_slots_held_by_other_processes_count_and_dead_ones_expire(as_alice, alice, redis):
    now = time.time()
    # Two waiters of another web process: one live, one whose process died long ago.
    redis.zadd(slots_key(alice), {"other-live": now + feed.SLOT_LEASE, "other-dead": now - 1})
    with override_settings(DJANGO_HOOKS=CAP):
        mine = as_alice.get(API + "events/stream/")
        assert mine.status_code == 200  # the dead one no longer counts
        assert_refused(as_alice.get(API + "events/stream/"), 2)
        mine.close()
    assert redis.zrange(slots_key(alice), 0, -1) == [b"other-live"]


def test_a_waiting_stream_renews_its_lease(alice, redis, monkeypatch):
    monkeypatch.setattr(feed, "RECHECK", 0.2)
    settings = {**CAP, "FEED_STREAM_LIFETIME": 5, "FEED_HEARTBEAT": 0.6}
    with override_settings(DJANGO_HOOKS=settings):
        response = client_for(alice).get(API + "events/stream/")
        chunks = iter(response.streaming_content)
        next(chunks)  # the opening; the slot is taken
        [(_, first_end)] = redis.zrange(slots_key(alice), 0, -1, withscores=True)
        assert next(chunks) == feed.HEARTBEAT.encode()  # waited 0.6 s, renewing every 0.2 s
        [(_, renewed_end)] = redis.zrange(slots_key(alice), 0, -1, withscores=True)
        assert renewed_end > first_end
        response.close()
    assert redis.zcard(slots_key(alice)) == 0


def test_asgi_streams_are_capped_too(alice, redis):
    async def open_streams():
        client = AsyncClient()
        await client.aforce_login(alice)
        held = [await client.get(API + "events/stream/") for _ in range(2)]
        refused = await client.get(API + "events/stream/")
        for response in held:
            await response.streaming_content.aclose()
        return [r.status_code for r in held], refused

    with override_settings(DJANGO_HOOKS=CAP):
        statuses, refused = async_to_sync(open_streams)()
    assert statuses == [200, 200]
    assert_refused(refused, 2)


def test_waiting_never_holds_a_database_connection(alice, redis, monkeypatch):
    """Each time a waiter blocks on Redis it has closed its database connection first."""
    held_while_waiting = []
    wait = feed.Feed._wait_for_message

    def spy(pubsub, timeout):
        held_while_waiting.append(connection.connection is not None and not _in_memory())
        return wait(pubsub, min(timeout, 0.2))

    closed = []
    release = feed.release_database

    def release_spy():
        closed.append(True)
        release()

    monkeypatch.setattr(feed.Feed, "_wait_for_message", staticmethod(spy))
    monkeypatch.setattr(feed, "release_database", release_spy)
    client = client_for(alice)
    with override_settings(DJANGO_HOOKS={**CAP, "FEED_STREAM_LIFETIME": 0.6}):
        assert client.get(API + "events/feed/", {"wait": 0.5}).status_code == 200
        b"".join(client.get(API + "events/stream/").streaming_content)
    assert held_while_waiting and not any(held_while_waiting)
    assert len(closed) >= len(held_while_waiting)


def _in_memory() -> bool:
    # SQLite's in-memory test database ignores close() (it would lose the data).
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


def database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@on_postgres
@pytest.mark.parametrize("kind", ["long poll", "stream"])
def test_thirty_waiters_hold_no_postgresql_connections(alice, redis, kind):
    waiters = 30
    settings = {
        "FEED_CONNECTIONS_PER_OWNER": waiters,
        "FEED_STREAM_LIFETIME": 4,
        "FEED_HEARTBEAT": 10,
    }
    baseline = database_connections()
    done = threading.Barrier(waiters + 1)

    def wait():
        try:
            client = client_for(alice)
            if kind == "long poll":
                assert client.get(API + "events/feed/", {"wait": 4}).status_code == 200
            else:
                b"".join(client.get(API + "events/stream/").streaming_content)
        finally:
            connections.close_all()
            done.wait(15)

    # Overridden here for every thread: override_settings entered in many threads at once
    # would restore the settings out of order.
    with override_settings(DJANGO_HOOKS=settings):
        threads = [threading.Thread(target=wait) for _ in range(waiters)]
        for thread in threads:
            thread.start()
        channel = feed.owner_channel(alice).encode()
        deadline = time.monotonic() + 15
        while dict(redis.pubsub_numsub(channel)).get(channel, 0) < waiters:
            assert time.monotonic() < deadline, "the waiters never subscribed"
            time.sleep(0.05)
        time.sleep(0.3)  # each has read its first page and is blocked on Redis
        during = database_connections()
        done.wait(15)
        for thread in threads:
            thread.join(15)
    print(f"{waiters} {kind}s waiting: {during} connections (baseline {baseline})")
    assert during <= baseline + 2, (during, baseline)
