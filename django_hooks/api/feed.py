"""The event feed: the events an owner's endpoints would receive, read by cursor instead.

This module reads and waits; ``django_hooks.outbound.feed`` gives events their final position
as their transactions commit and wakes waiting readers.

Ordering and completeness. Every event has a ``feed_position``: a time-sortable string made when
the event is created, so the feed orders events by when they happened. Positions are made before
their transaction commits, and transactions commit in any order, so a consumer that had read up
to position P could later miss an event at a position below P that committed after it read.
The feed closes that gap with a visibility lag plus a commit check, rather than by serialising
writers (which would make every ``send_event`` transaction wait for the previous one):

1. The feed serves only positions older than ``FEED_LAG`` seconds (default 0.5): the "horizon".
2. When an event's transaction commits, a commit hook compares the time with its position. If
   the commit came later than half the lag after the position was made (a slow transaction),
   the event is moved to a fresh position made after the commit, which is above every horizon
   any reader has used so far. A consumer that already passed the old position sees the event
   at its new one; one that had not reached it sees it once, at the new one.

So a consumer following ``next`` cursors sees every committed event (a late event, once
moved, possibly twice if it read in the instant between commit and move: the feed, like
webhooks, is at least once; ``id`` is the dedupe key). What this assumes: application clocks
agree within the lag, and the one-row move commits within the lag of its own position. A
process that dies between a late commit and the move leaves that event at its old position.

Waiting (long polling and server-sent events) subscribes to a Redis channel per owner on the
queue's Redis; the commit hook publishes the position there, so a waiting reader wakes within
the lag of a commit instead of polling the database. A safety-net query runs every
``RECHECK`` seconds in case a message was lost.

What waiting costs. Each waiter holds a thread (WSGI) and a Redis connection for up to
``FEED_STREAM_LIFETIME``, so one owner may hold at most ``FEED_CONNECTIONS_PER_OWNER`` of them,
counted across processes in a Redis sorted set per owner (``WaitSlot``): a member per waiter,
scored by when its lease ends, renewed while it waits, so a process that dies frees its slots
within ``SLOT_LEASE``. No waiter holds a database connection while it waits: it closes it
before blocking on Redis, and the next query opens one again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.db import connections, models, router
from django.db.models import Q

from django_hooks.conf import hooks_settings
from django_hooks.core.ids import id_timestamp
from django_hooks.core.payload import PayloadEncoder
from django_hooks.event_types import types_q
from django_hooks.exceptions import InvalidCursor
from django_hooks.models import Event, owner_q
from django_hooks.outbound.feed import CHANNEL_PREFIX, clock, horizon, lag, owner_channel
from django_hooks.outbound.wakeups import get_queue

__all__: list[str] = []

logger = logging.getLogger("django_hooks")

CURSOR_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MAX_WAIT = 30  # seconds a long poll may wait
MAX_LIMIT = 500
RECHECK = 10.0  # seconds between safety-net queries while waiting
#: Seconds a waiter's slot lives unless renewed; a waiter renews it at least every RECHECK.
SLOT_LEASE = 3 * RECHECK
SLOTS_PREFIX = "django_hooks:feed-waiters:"


def _redis() -> Any:
    return get_queue().connection


# -- waiting slots: at most FEED_CONNECTIONS_PER_OWNER waiters per owner ---------------------------


class TooManyWaiters(Exception):
    """The owner already holds ``limit`` long polls and streams; retry after ``retry_after`` s."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"at most {limit} long polls and event streams may be open at once per account; "
            "close one or retry later"
        )
        self.limit = limit
        self.retry_after = retry_after


# One round trip: forget expired leases (a dead process's), then take a slot if one is free.
# Returns {1, 0} when taken, else {0, the earliest lease end}.
_ACQUIRE = """
local key, token = KEYS[1], ARGV[1]
local now, lease, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= limit then
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, first[2]}
end
redis.call('ZADD', key, now + lease, token)
redis.call('EXPIRE', key, math.ceil(lease) + 1)
return {1, '0'}
"""


class WaitSlot:
    """One waiter's place in its owner's count, held from ``acquire`` to ``release``."""

    def __init__(self, key: str, token: str, connection: Any) -> None:
        self.key, self.token, self.connection = key, token, connection
        self.renewed = time.monotonic()
        self.released = connection is None  # no Redis: nothing is counted (see acquire)

    @classmethod
    def acquire(cls, channel: str) -> WaitSlot:
        """Take one of the owner's slots or raise ``TooManyWaiters``. Without Redis, waiting
        degrades to polling as wake-ups do, and nothing is counted."""
        limit = int(hooks_settings.FEED_CONNECTIONS_PER_OWNER)
        key = SLOTS_PREFIX + channel.removeprefix(CHANNEL_PREFIX)
        token = secrets.token_hex(8)
        try:
            connection = _redis()
            now = time.time()
            taken, first_end = connection.register_script(_ACQUIRE)(
                keys=[key], args=[token, now, SLOT_LEASE, limit]
            )
        except Exception:
            logger.warning("Feed waiters cannot be counted (Redis); not limiting", exc_info=True)
            return cls(key, token, None)
        if not int(taken):
            retry_after = min(SLOT_LEASE, max(1.0, float(first_end) - now))
            raise TooManyWaiters(limit, math.ceil(retry_after))
        return cls(key, token, connection)

    def renew(self) -> None:
        """Push the lease end back; cheap to call on every wake-up (renews once a RECHECK)."""
        if self.released or time.monotonic() - self.renewed < RECHECK:
            return
        self.renewed = time.monotonic()
        try:
            pipe = self.connection.pipeline(transaction=False)
            pipe.zadd(self.key, {self.token: time.time() + SLOT_LEASE}, xx=True)
            pipe.expire(self.key, math.ceil(SLOT_LEASE) + 1)
            pipe.execute()
        except Exception:
            logger.warning("Feed waiter lease not renewed (Redis)", exc_info=True)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            self.connection.zrem(self.key, self.token)
        except Exception:  # the lease ends by itself
            logger.warning("Feed waiter slot not released (Redis)", exc_info=True)


def release_database() -> None:
    """Close this thread's connection to the events' database before a wait (the next query
    opens one again), unless a transaction still needs it."""
    connection = connections[router.db_for_read(Event)]
    if not connection.in_atomic_block:
        connection.close()


# -- reading --------------------------------------------------------------------------------------


@dataclass
class Page:
    events: list[Event]
    next: str
    has_more: bool


def check_cursor(after: str | None) -> str:
    """A cursor from the client: empty (from the oldest event), ``now``, or a ``next`` value."""
    if not after:
        return ""
    if after == "now":
        return horizon()
    if not CURSOR_RE.match(after):
        raise InvalidCursor(f"{after!r} is not a feed cursor: pass back a `next` value unchanged.")
    return after


class Feed:
    """One owner's feed, optionally of some event types only."""

    def __init__(self, owner: models.Model | None, types: list[str] | None = None) -> None:
        self.owner = owner
        self.types = types or []
        self.channel = owner_channel(owner)
        self.filter = owner_q(owner) & types_q(self.types) & Q(is_test=False)

    def page(self, after: str = "", limit: int = 100) -> Page:
        """Final events after ``after``, oldest first; ``next`` is the cursor to pass back."""
        limit = max(1, min(limit, MAX_LIMIT))
        top = horizon()
        rows = list(
            Event.objects.filter(
                self.filter, feed_position__gt=after, feed_position__lt=top
            ).order_by("feed_position")[: limit + 1]
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        # A short page read everything below the horizon, which is final: start there next.
        next_cursor = rows[-1].feed_position if has_more else max(after, top)
        return Page(rows, next_cursor, has_more)

    # -- waiting (sync: WSGI, long polling) --

    def _subscribe(self) -> Any:
        try:
            pubsub = _redis().pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(self.channel)
            return pubsub
        except Exception:
            logger.warning("Feed wake-ups unavailable (Redis); polling instead", exc_info=True)
            return None

    @staticmethod
    def _wait_for_message(pubsub: Any, timeout: float) -> str | None:
        """Block until a wake-up arrives (its position) or ``timeout`` passes (None)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if pubsub is None:
                time.sleep(min(remaining, 2.0))
                return None
            try:
                message = pubsub.get_message(timeout=remaining)
            except Exception:
                time.sleep(min(remaining, 2.0))
                return None
            if message and message.get("type") == "message":
                data = message["data"]
                return data.decode() if isinstance(data, bytes) else str(data)

    @staticmethod
    def _until_visible(position: str | None) -> float:
        """Seconds until an event at ``position`` is below the horizon."""
        if not position or not CURSOR_RE.match(position):
            return 0.0
        return max(0.0, id_timestamp(position) + lag() - clock() + 0.005)

    def wait(self, after: str = "", limit: int = 100, timeout: float = 0) -> Page:
        """``page()``, or if it is empty, wait up to ``timeout`` seconds for a matching event."""
        timeout = max(0.0, min(float(timeout), MAX_WAIT))
        if timeout <= 0:
            return self.page(after, limit)
        deadline = time.monotonic() + timeout
        slot = WaitSlot.acquire(self.channel)  # raises TooManyWaiters
        pubsub = None
        try:
            pubsub = self._subscribe()
            # Subscribed before reading: an event committed after the read wakes us.
            page = self.page(after, limit)
            while not page.events:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                release_database()
                position = self._wait_for_message(pubsub, min(remaining, RECHECK))
                delay = min(self._until_visible(position), max(0.0, deadline - time.monotonic()))
                if delay:
                    time.sleep(delay)
                slot.renew()
                page = self.page(after, limit)
        finally:
            if pubsub is not None:
                pubsub.close()
            slot.release()
        return page

    # -- server-sent events --

    @staticmethod
    def sse_event(event: Event) -> str:
        # Unnamed ("message") events, so EventSource.onmessage sees every type.
        body = json.dumps(event_payload(event), cls=PayloadEncoder, separators=(",", ":"))
        return f"id: {event.feed_position}\ndata: {body}\n\n"

    def _send_page(self, page: Page, clock: _StreamClock) -> Iterator[str]:
        for event in page.events:
            yield self.sse_event(event)
            clock.sent()

    def open_stream(self, after: str = "", *, asynchronous: bool = False) -> FeedStream:
        """Take a waiter's slot (or raise ``TooManyWaiters``) for a stream of server-sent
        events; the slot is given back when the stream ends or its response is closed."""
        slot = WaitSlot.acquire(self.channel)
        events = self.astream(after, slot) if asynchronous else self.stream(after, slot)
        return FeedStream(events, slot)

    def _page_then_release(self, after: str, limit: int) -> Page:
        page = self.page(after, limit)
        release_database()  # the stream waits next, or sends and waits
        return page

    def stream(self, after: str = "", slot: WaitSlot | None = None) -> Iterator[str]:
        """Server-sent events (sync, for WSGI): events as they commit, heartbeats, then end."""
        clock = _StreamClock(time.monotonic)
        pubsub = self._subscribe()
        try:
            yield stream_opening(after)
            while clock.running():
                page = self._page_then_release(after, 100)
                yield from self._send_page(page, clock)
                after = page.next
                if page.has_more:
                    continue
                position = self._wait_for_message(pubsub, clock.wait_timeout())
                if position is not None:
                    if delay := clock.delay_until_visible(self._until_visible(position)):
                        time.sleep(delay)
                elif clock.heartbeat_due():
                    yield HEARTBEAT
                    clock.sent()
                if slot is not None:
                    slot.renew()
        finally:
            if pubsub is not None:
                pubsub.close()
            if slot is not None:
                slot.release()

    async def astream(self, after: str = "", slot: WaitSlot | None = None) -> AsyncIterator[str]:
        """Server-sent events for ASGI: waits on Redis asynchronously, queries in a thread."""
        clock = _StreamClock(asyncio.get_running_loop().time)
        read = sync_to_async(self._page_then_release)
        renew = sync_to_async(slot.renew if slot is not None else _nothing)
        client = await sync_to_async(_async_client)()
        pubsub = None
        try:
            if client is not None:
                try:
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(self.channel)
                except Exception:
                    logger.warning("Feed wake-ups unavailable (Redis)", exc_info=True)
                    pubsub = None
            yield stream_opening(after)
            while clock.running():
                page = await read(after, 100)
                for line in self._send_page(page, clock):
                    yield line
                after = page.next
                if page.has_more:
                    continue
                position = await _async_message(pubsub, clock.wait_timeout())
                if position is not None:
                    if delay := clock.delay_until_visible(self._until_visible(position)):
                        await asyncio.sleep(delay)
                elif clock.heartbeat_due():
                    yield HEARTBEAT
                    clock.sent()
                await renew()
        finally:
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose(close_connection_pool=True)
            if slot is not None:
                await sync_to_async(slot.release)()


def _nothing() -> None:
    return None


class FeedStream:
    """A stream's events (sync or async iterable) that gives its waiter's slot back on
    ``close()``, which Django calls on the response even when the stream never started."""

    def __init__(self, events: Iterator[str] | AsyncIterator[str], slot: WaitSlot) -> None:
        self.events = events
        self.slot = slot

    def __iter__(self) -> Iterator[str]:
        if not isinstance(self.events, Iterator):
            raise TypeError("an asynchronous stream: iterate it with async for")
        return self.events

    def __aiter__(self) -> AsyncIterator[str]:
        if isinstance(self.events, Iterator):
            raise TypeError("a synchronous stream: iterate it with for")
        return self.events

    def close(self) -> None:
        if isinstance(self.events, Iterator):
            self.events.close()  # type: ignore[attr-defined]
        self.slot.release()


HEARTBEAT = ": heartbeat\n\n"


def stream_opening(after: str) -> str:
    return f"retry: 2000\n: resuming after {after or 'the start'}\n\n"


class _StreamClock:
    """The timing of one SSE stream, shared by the WSGI and ASGI loops: when it ends, how long
    it may wait for a wake-up, when a heartbeat is due."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.heartbeat = float(hooks_settings.FEED_HEARTBEAT)
        self.end = now() + float(hooks_settings.FEED_STREAM_LIFETIME)
        self.last_sent = now()

    def running(self) -> bool:
        return self.now() < self.end

    def sent(self) -> None:
        self.last_sent = self.now()

    def wait_timeout(self) -> float:
        """Until the next heartbeat or the end, at most ``RECHECK`` (the safety-net query)."""
        until = min(self.last_sent + self.heartbeat, self.end) - self.now()
        return min(max(until, 0.0), RECHECK)

    def delay_until_visible(self, delay: float) -> float:
        """``delay``, cut short by the end of the stream."""
        return min(delay, max(0.0, self.end - self.now()))

    def heartbeat_due(self) -> bool:
        return self.last_sent + self.heartbeat <= self.now() < self.end


_ASYNC_KEYS = (
    "host",
    "port",
    "db",
    "username",
    "password",
    "path",
    "client_name",
    "socket_connect_timeout",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_check_hostname",
)


def _async_client() -> Any:
    """An asyncio client of the queue's Redis (same server and credentials), or None."""
    try:
        pool = _redis().connection_pool
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in _ASYNC_KEYS}
        if "path" in kwargs:
            kwargs["connection_class"] = aioredis.UnixDomainSocketConnection
        elif "SSL" in getattr(pool.connection_class, "__name__", ""):
            kwargs["connection_class"] = aioredis.SSLConnection
        return aioredis.Redis(connection_pool=aioredis.ConnectionPool(**kwargs))
    except Exception:
        logger.warning("Feed wake-ups unavailable (Redis); polling instead", exc_info=True)
        return None


async def _async_message(pubsub: Any, timeout: float) -> str | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        if pubsub is None:
            await asyncio.sleep(min(remaining, 2.0))
            return None
        try:
            message = await pubsub.get_message(timeout=remaining)
        except Exception:
            await asyncio.sleep(min(remaining, 2.0))
            return None
        if message and message.get("type") == "message":
            data = message["data"]
            return data.decode() if isinstance(data, bytes) else str(data)


def event_payload(event: Event) -> dict[str, Any]:
    """An event as the feed serves it: the webhook body plus its id and cursor."""
    return {
        "id": event.pk,
        "type": event.type,
        "timestamp": event.created_at,
        "data": event.data,
        "cursor": event.feed_position,
    }
