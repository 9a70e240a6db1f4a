"""The event feed: the events an owner's endpoints would receive, read by cursor instead.

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
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models, router
from django.db.models import Q

from django_hooks.conf import hooks_settings
from django_hooks.core import ids
from django_hooks.core.ids import first_id_at, id_timestamp, new_id
from django_hooks.core.payload import PayloadEncoder
from django_hooks.exceptions import InvalidCursor
from django_hooks.models import Event, owner_q

logger = logging.getLogger("django_hooks")

CURSOR_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MAX_WAIT = 30  # seconds a long poll may wait
MAX_LIMIT = 500
RECHECK = 10.0  # seconds between safety-net queries while waiting
CHANNEL_PREFIX = "django_hooks:feed:"


def clock() -> float:
    return ids.clock()


def lag() -> float:
    return float(hooks_settings.FEED_LAG)


def horizon() -> str:
    """Positions below this are final: no transaction can still add an event under it."""
    return first_id_at(clock() - lag())


def channel_for(content_type_id: int | None, owner_id: str | None) -> str:
    return f"{CHANNEL_PREFIX}{content_type_id or ''}:{owner_id or ''}"


def owner_channel(owner: models.Model | None) -> str:
    if owner is None:
        return channel_for(None, None)
    from django.contrib.contenttypes.models import ContentType

    return channel_for(ContentType.objects.get_for_model(owner).pk, str(owner.pk))


def _redis() -> Any:
    from django_hooks.outbound.tasks import get_queue

    return get_queue().connection


# -- writing: the commit hook --------------------------------------------------------------------


def on_event_saved(sender: Any, instance: Event, created: bool, raw: bool = False,
                   using: str | None = None, **kwargs: Any) -> None:  # fmt: skip
    """``post_save`` receiver: check the transaction's new events once it commits."""
    if not created or raw:
        return
    from django_hooks.outbound.tasks import publish_on_commit

    channel = channel_for(instance.owner_content_type_id, instance.owner_id)
    publish_on_commit(events_committed, [(instance.pk, instance.feed_position, channel)],
                      using=using or router.db_for_write(Event))  # fmt: skip


def events_committed(events: list[tuple[str, str, str]], using: str) -> dict[str, str]:
    """Move late-committed events above every horizon served so far; return the position to
    publish on each channel, so waiting readers wake (``tasks.notify`` publishes them in the
    same Redis round trip as the transaction's wake-up).

    ``events`` are one transaction's (pk, position, channel): one UPDATE for all the late ones
    and one position per channel, whatever the number of events.
    """
    now = clock()
    late = [Event(pk=pk, feed_position=new_id("", now=now))
            for pk, position, _ in events if now - id_timestamp(position) > lag() / 2]  # fmt: skip
    if late:
        Event.objects.using(using).bulk_update(late, ["feed_position"], batch_size=500)
    moved = {event.pk: event.feed_position for event in late}
    latest: dict[str, str] = {}
    for pk, position, channel in events:
        latest[channel] = max(latest.get(channel, ""), moved.get(pk, position))
    return latest


# -- reading --------------------------------------------------------------------------------------


@dataclass
class Page:
    events: list[Event]
    next: str
    has_more: bool


def types_q(types: list[str]) -> Q:
    """Events whose type matches any of ``types`` (exact, ``prefix.*`` or ``*``)."""
    if not types or "*" in types:
        return Q()
    q = Q()
    for pattern in types:
        if pattern.endswith(".*"):
            q |= Q(type__startswith=pattern[:-1])
        else:
            q |= Q(type=pattern)
    return q


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
        pubsub = self._subscribe()
        try:
            # Subscribed before reading: an event committed after the read wakes us.
            page = self.page(after, limit)
            while not page.events:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                position = self._wait_for_message(pubsub, min(remaining, RECHECK))
                delay = min(self._until_visible(position), max(0.0, deadline - time.monotonic()))
                if delay:
                    time.sleep(delay)
                page = self.page(after, limit)
        finally:
            if pubsub is not None:
                pubsub.close()
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

    def stream(self, after: str = "") -> Iterator[str]:
        """Server-sent events (sync, for WSGI): events as they commit, heartbeats, then end."""
        clock = _StreamClock(time.monotonic)
        pubsub = self._subscribe()
        try:
            yield stream_opening(after)
            while clock.running():
                page = self.page(after, 100)
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
        finally:
            if pubsub is not None:
                pubsub.close()

    async def astream(self, after: str = "") -> AsyncIterator[str]:
        """Server-sent events for ASGI: waits on Redis asynchronously, queries in a thread."""
        import asyncio

        from asgiref.sync import sync_to_async

        clock = _StreamClock(asyncio.get_running_loop().time)
        read = sync_to_async(self.page)
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
        finally:
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose(close_connection_pool=True)


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


_ASYNC_KEYS = ("host", "port", "db", "username", "password", "path", "client_name",
               "socket_connect_timeout", "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs",
               "ssl_ca_certs", "ssl_check_hostname")  # fmt: skip


def _async_client() -> Any:
    """An asyncio client of the queue's Redis (same server and credentials), or None."""
    try:
        import redis.asyncio as aioredis

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
    import asyncio

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
