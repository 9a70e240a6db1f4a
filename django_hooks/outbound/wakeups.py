"""Waking a drain: what the request path does once a transaction commits, in one Redis round
trip, and what the engine does to get a successor or a later run.

Jobs carry no deliveries: a drain job (``django_hooks.outbound.tasks.drain``) takes due
deliveries from the database itself, so the database stays the source of truth, batches are
full whatever transactions recorded them, and a job that Redis loses is re-created by
``hooks_sweep``.

The request path only *wakes* a drain: one ``SET NX`` on a marker key says whether a drain job
is already waiting on the queue; only if none is does it enqueue one. A drain deletes the marker
as it starts, so a commit that lands while it runs wakes another (no wake-up is ever lost); a
marker left by a worker that died before clearing it is ignored once the queue is empty.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

from django.utils import timezone
from rq import Queue

from django_hooks.conf import hooks_settings
from django_hooks.internal import queue as queues
from django_hooks.internal.commit import on_commit_batch

__all__: list[str] = []

logger = logging.getLogger("django_hooks")

#: The job, by path: RQ imports it in the worker, and the request path stays clear of the engine.
DRAIN = "django_hooks.outbound.tasks.drain"
DRAIN_SECONDS = 60  # a drain claims for this long, then hands over to a fresh job


def job_timeout() -> int:
    """RQ's limit for one drain job: its claiming time, then the slowest attempt, then writes."""
    return int(DRAIN_SECONDS + float(hooks_settings.TIMEOUT) + float(hooks_settings.LEASE) + 30)


#: Seconds a "drain wanted" marker lives: past it a lost or slow job no longer blocks wake-ups.
WAKE_MARKER_TTL = 15


def get_queue() -> Queue:
    """The delivery queue (the ``QUEUE`` setting)."""
    return queues.get_queue(hooks_settings.QUEUE)


def _failed(queue: Queue | None) -> None:
    """Redis failed: connect afresh next time, and drop what was prepared for this connection."""
    if queue is not None:
        queues.forget(queue)
        with _spare_lock:
            for key in [key for key in _spare if key[0] == id(queue.connection)]:
                del _spare[key]


def wake_marker(queue: Queue) -> str:
    return f"django_hooks:drain-wanted:{queue.name}"


class _JobOptions(TypedDict):
    job_timeout: int
    result_ttl: int
    failure_ttl: int


def _job_options() -> _JobOptions:
    # result_ttl=0: the outcome lives in the database; Redis keeps nothing once a job is done.
    return {"job_timeout": job_timeout(), "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}


# One round trip per commit: the wake-up (set the marker; if it was not set, enqueue a drain) and
# the feed's notifications run as one script. The enqueue is RQ's own: ``enqueue_job`` records its
# commands on a pipeline that is never sent, and the script replays them only if the marker was
# free, so the job in Redis is exactly what ``Queue.enqueue`` would have made.
_NOTIFY_SCRIPT = """
local i, woke = 3, 0
local commands = tonumber(ARGV[2])
if #KEYS == 2 then
  if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    woke = 1
  elseif redis.call('LLEN', KEYS[2]) == 0 then
    -- The marker says a drain waits, yet nothing does: a worker took the job and died (or
    -- has yet to clear the marker). Enqueue anyway; a spare drain finds nothing and ends.
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    woke = 1
  end
end
for _ = 1, commands do
  local count = tonumber(ARGV[i])
  if woke == 1 then
    redis.call(unpack(ARGV, i + 1, i + count))
  end
  i = i + count + 1
end
while i < #ARGV do
  if redis.call('PUBSUB', 'NUMSUB', ARGV[i])[2] > 0 then
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
return woke
"""


# Preparing RQ's enqueue commands (a Job, its pickled call, its hash) costs about as much as the
# round trip itself, and most commits find a drain already waiting and use none. So a prepared
# enqueue that was not used is kept for the next commit, per process, queue and job options;
# one that was used is gone, so no job id is ever enqueued twice. (Its job's ``enqueued_at``
# is when it was prepared: RQ only displays it.)
_spare_lock = threading.Lock()
SpareKey = tuple[int, str, tuple[tuple[str, object], ...]]  # connection, queue, job options
_spare: dict[SpareKey, list[list[tuple[Any, ...]]]] = {}
SPARES_KEPT = 8


def _spare_key(queue: Queue) -> SpareKey:
    return (id(queue.connection), queue.name, tuple(sorted(_job_options().items())))


def _take_enqueue(queue: Queue, key: SpareKey) -> list[tuple[Any, ...]]:
    with _spare_lock:
        spares = _spare.get(key)
        if spares:
            return spares.pop()
    return _enqueue_commands(queue)


def _give_back(key: SpareKey, commands: list[tuple[Any, ...]]) -> None:
    with _spare_lock:
        spares = _spare.setdefault(key, [])
        if len(spares) < SPARES_KEPT:
            spares.append(commands)


def _enqueue_commands(queue: Queue) -> list[tuple[Any, ...]]:
    """The Redis commands ``queue.enqueue(drain, ...)`` would send, without sending them."""
    pipe = queue.connection.pipeline(transaction=False)
    try:
        options = _job_options()
        job = queue.create_job(
            DRAIN,
            timeout=options["job_timeout"],
            result_ttl=options["result_ttl"],
            failure_ttl=options["failure_ttl"],
        )
        queue.enqueue_job(job, pipeline=pipe)
        return [args for args, _options in pipe.command_stack]
    finally:
        pipe.reset()


def notify(*, wake: bool = True, publish: Mapping[str, str] | None = None) -> bool:
    """Wake a drain (unless one is already waiting) and publish feed positions (to channels
    someone listens on), in one Redis round trip; False if Redis could not be reached.

    A Redis failure is logged, not raised: the deliveries wait in the database for the sweep,
    and feed readers find the events at their next safety-net query.
    """
    publish = publish or {}
    if (not wake and not publish) or _paused.is_set():
        return True
    queue = None
    try:
        queue = get_queue()
        if not queue._is_async:  # django-rq's "ASYNC": False runs the job inline, here
            if wake:
                queue.enqueue(DRAIN, **_job_options())
            return True
        key = _spare_key(queue)
        commands = _take_enqueue(queue, key) if wake else []
        args: list[Any] = [WAKE_MARKER_TTL, len(commands)]
        for command in commands:
            args += [len(command), *command]
        for channel, position in publish.items():
            args += [channel, position]
        cache = queues.derived(queue)
        script = cache.get("notify")
        if script is None:
            script = cache["notify"] = queue.connection.register_script(_NOTIFY_SCRIPT)
        keys = [wake_marker(queue), queue.key] if wake else []
        if not script(keys=keys, args=args) and commands:
            _give_back(key, commands)  # a drain was waiting: this enqueue was not used
    except Exception:
        _failed(queue)
        logger.warning(
            "Could not wake a webhook worker; pending deliveries stay pending until "
            "hooks_sweep enqueues them.",
            exc_info=True,
        )
        return False
    return True


_paused = threading.Event()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No wake-ups or feed notifications inside the block, from any thread: the deliveries wait
    in the database (``django_hooks.testing.webhook_outbox`` delivers them in-process)."""
    _paused.set()
    try:
        yield
    finally:
        _paused.clear()


def wake() -> bool:
    """Make sure a drain job is waiting on the queue; False if Redis could not be reached."""
    return notify(wake=True)


# -- after commit: one notification per transaction ---------------------------------------------

#: Prepares feed items after commit and returns the positions to publish, by channel.
Prepare = Callable[[list[Any], str], Mapping[str, str]]
_WAKE = ("wake",)


def wake_on_commit(*, using: str) -> None:
    """Wake a drain once the current transaction on ``using`` commits (once per transaction)."""
    on_commit_batch(_committed, [_WAKE], using=using)


def publish_on_commit(prepare: Prepare, items: list[Any], *, using: str) -> None:
    """Once the transaction commits, publish what ``prepare(items, using)`` returns, in the same
    round trip as the transaction's wake-up."""
    on_commit_batch(_committed, [(prepare, item) for item in items], using=using)


def _committed(items: list[Any], using: str) -> None:
    wanted = False
    groups: dict[Prepare, list[Any]] = {}
    for item in items:
        if item is _WAKE:
            wanted = True
        else:
            groups.setdefault(item[0], []).append(item[1])
    latest: dict[str, str] = {}
    for prepare, batch in groups.items():
        try:
            positions = prepare(batch, using)
        except Exception:  # never lose the wake-up to the feed's bookkeeping
            logger.warning("Could not prepare feed notifications", exc_info=True)
            continue
        for channel, position in positions.items():
            latest[channel] = max(latest.get(channel, ""), position)
    notify(wake=wanted, publish=latest)


def schedule_wake(at: dt.datetime, *, every: float = 1) -> None:
    """Have a drain run at ``at`` (RQ's scheduler: ``rqworker --with-scheduler``), rounded up to
    a multiple of ``every`` seconds: at most one job per such slot however many drains ask."""
    delay = (at - timezone.now()).total_seconds()
    if delay <= 0.5:
        wake()
        return
    second = math.ceil(at.timestamp() / every) * every
    queue = None
    try:
        queue = get_queue()
        key = f"django_hooks:drain-at:{queue.name}:{second}"
        if queue.connection.set(key, "1", nx=True, ex=int(delay) + 120):
            when = dt.datetime.fromtimestamp(second, tz=dt.UTC)
            queue.enqueue_at(when, DRAIN, **_job_options())
    except Exception:
        _failed(queue)
        logger.warning("Could not schedule a webhook worker; hooks_sweep will.", exc_info=True)
