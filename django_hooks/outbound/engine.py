"""The delivery engine: one worker process keeps up to ``CONCURRENCY`` attempts in flight.

Threads inside the RQ job, rather than another worker design, because ``rqworker`` stays a
supported way to run workers (any RQ worker class, any deployment that already runs RQ), and
because an attempt mostly waits on a remote receiver: threads release the GIL while they wait,
and requests (the HTTP client) is blocking. The thread pool lives as long as the process, so a
worker keeps its threads and keep-alive connections from one job to the next.

The main thread is the only one that touches the database. It loops:

1. claim as many due deliveries as there are free slots (``claims.claim``) and hand each to a
   thread, so a slot that frees takes the next due delivery at once;
2. wait for finished attempts and write every one that has arrived in one transaction
   (``delivery.Outcomes``): a constant number of queries per group, whatever its size;
3. renew its leases every third of ``LEASE`` (the heartbeat).

A drain ends when nothing is in flight and nothing is due, or, past ``DRAIN_SECONDS``, once its
attempts in flight are done (the job then wakes a successor, so other jobs on the queue get a
turn and RQ's job timeout never hits a healthy drain).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.core.signing import Signer
from django_hooks.models import Delivery
from django_hooks.outbound import claims, telemetry
from django_hooks.outbound.client import transport
from django_hooks.outbound.delivery import (
    Attempted,
    Outcomes,
    Totals,
    send_attempt,
    with_db_retries,
)
from django_hooks.outbound.transport import HTTPResult, Transport
from django_hooks.outbound.wakeups import DRAIN_SECONDS

__all__: list[str] = []

logger = logging.getLogger("django_hooks")

IDLE_POLL = 0.2  # seconds between claims while nothing more is due and attempts are in flight
LINGER = 2.0  # seconds an idle drain waits for work due that soon, rather than ending
HELPER_WAKE_EVERY = 0.5  # seconds between a busy drain's calls for help
GROUP_WAIT = 0.002  # seconds a group of results waits for one more before it is written
BODIES_KEPT = 1000  # encoded payloads kept for the other deliveries of their event, at most

_pool_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, size, executor)

#: Set when the worker process is asked to stop (``hooks_worker``'s first Ctrl-C or SIGTERM):
#: a running drain claims nothing more, hands back what it has not started, and ends once its
#: attempts in flight are done; the job then wakes a successor on another worker.
_stopping = threading.Event()


def request_stop() -> None:
    _stopping.set()


def thread_pool(size: int) -> ThreadPoolExecutor:
    """The process's attempt threads, kept across jobs (a forked child makes its own)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] != size:
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)
            executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="django-hooks")
            _pool = (os.getpid(), size, executor)
        return _pool[2]


class Drain:
    """One run of the engine; ``only`` restricts it to the given deliveries."""

    def __init__(
        self,
        *,
        only: Iterable[int] | None = None,
        seconds: float | None = None,
        wake_helper: Callable[[], object] | None = None,
        watchdog: Callable[[dt.datetime], object] | None = None,
    ) -> None:
        self.only = None if only is None else list(only)
        # Called when a claim came back full (more may be due than this process can take), so
        # that an idle worker starts a drain too: one commit's backlog uses every worker.
        self.wake_helper = wake_helper
        # Called with "just past my leases" while this drain holds claims: a drain scheduled
        # then takes them over if this process died (SIGKILL, OOM), with no sweep needed.
        self.watchdog = watchdog
        self.seconds = DRAIN_SECONDS if seconds is None else seconds
        self.token = uuid.uuid4()
        self.result = Totals()
        #: Whether due work was left when the drain stopped claiming (its time was up).
        self.more_due = False
        # Endpoints whose circuit opened during this drain: attempts not started yet are handed
        # back instead of waiting out TIMEOUT against them. Read by the threads.
        self.open_circuits: set[int] = set()
        self.telemetry = telemetry.active()

    def run(self) -> Totals:
        concurrency = max(1, int(hooks_settings.CONCURRENCY))
        per_claim = max(1, int(hooks_settings.BATCH_SIZE))
        pool = thread_pool(concurrency)
        client = transport()
        finished: queue.SimpleQueue[tuple[Delivery, Future[Attempted]]] = queue.SimpleQueue()
        in_flight: dict[int, Delivery] = {}
        bodies: dict[str, bytes] = {}
        signers: dict[int, Signer] = {}
        renew_every = max(1.0, float(hooks_settings.LEASE) / 3)
        started = time.monotonic()
        next_renewal = started + renew_every
        exhausted_at: float | None = None  # when a claim last found less than it asked for
        helped_at = 0.0
        watched_at = -renew_every

        while True:
            now = time.monotonic()
            claiming = now - started < self.seconds and not _stopping.is_set()
            free = concurrency - len(in_flight)
            may_poll = exhausted_at is None or now - exhausted_at >= IDLE_POLL or not in_flight
            if claiming and free > 0 and may_poll:
                wanted = min(free, per_claim)
                if len(bodies) > BODIES_KEPT:  # an event's fan-out is claimed together
                    bodies.clear()
                claimed = with_db_retries(
                    functools.partial(claims.claim, self.token, wanted, only=self.only),
                    what="claim webhook deliveries",
                )
                exhausted_at = time.monotonic() if len(claimed) < wanted else None
                if claimed and self.watchdog is not None and now - watched_at >= renew_every:
                    watched_at = now
                    self.watchdog(timezone.now() + dt.timedelta(seconds=claims.lease_seconds() + 1))
                if self.only is not None:  # each given delivery is attempted once at most
                    taken = {delivery.pk for delivery in claimed}
                    self.only = [pk for pk in self.only if pk not in taken]
                for delivery in claimed:
                    in_flight[delivery.pk] = delivery
                    # Claimable again means its pause is over: this attempt is the probe.
                    self.open_circuits.discard(delivery.endpoint_id)
                    future = pool.submit(self._attempt, delivery, client, bodies, signers)
                    future.add_done_callback(
                        lambda f, d=delivery: finished.put((d, f))  # type: ignore[misc]
                    )
                if claimed and len(claimed) == wanted:
                    if self.wake_helper is not None and now - helped_at >= HELPER_WAKE_EVERY:
                        helped_at = now
                        self.wake_helper()
                    continue  # more may be due: fill every free slot before waiting
            if not in_flight:
                if not claiming:
                    self.more_due = self._anything_due()
                    return self.result
                soon = self._soon(started)
                if soon is None:
                    return self.result
                # Due again within a moment (a paused endpoint, a rate limit, a quick retry):
                # waiting here is cheaper and sooner than a scheduled job.
                time.sleep(soon)
                exhausted_at = None
                continue
            wait = max(0.0, next_renewal - time.monotonic())
            if claiming and free > 0:
                wait = min(wait, IDLE_POLL)
            group = self._collect(finished, wait, per_claim)
            if group:
                outcomes = Outcomes(self.token)
                for delivery, future in group:
                    outcomes.add(self._result_of(delivery, future))
                    in_flight.pop(delivery.pk, None)
                self.result.add(outcomes.write())
            if time.monotonic() >= next_renewal and in_flight:
                with_db_retries(lambda: claims.renew(self.token), what="renew webhook leases")
                next_renewal = time.monotonic() + renew_every

    def _soon(self, started: float) -> float | None:
        """Seconds until something is due, if that is within ``LINGER`` and this drain's time."""
        if self.only is not None:
            return None
        soonest = claims.next_due_at()
        if soonest is None:
            return None
        wait = max(IDLE_POLL, (soonest - timezone.now()).total_seconds() + 0.01)
        if wait > LINGER or time.monotonic() + wait - started >= self.seconds:
            return None
        return wait

    def _anything_due(self) -> bool:
        due = Delivery.objects.due(timezone.now())
        if self.only is not None:
            due = due.filter(pk__in=self.only)
        return due.exists()

    @staticmethod
    def _collect(
        finished: queue.SimpleQueue[tuple[Delivery, Future[Attempted]]], wait: float, most: int
    ) -> list[tuple[Delivery, Future[Attempted]]]:
        """Finished attempts (at most ``most``), waiting ``wait`` for the first."""
        try:
            group = [finished.get(timeout=wait) if wait > 0 else finished.get_nowait()]
        except queue.Empty:
            return []
        # Results that follow within a moment join the group: fast receivers answer a claim's
        # attempts together, and one write for them all costs far less than several.
        while len(group) < most:
            try:
                group.append(finished.get(timeout=GROUP_WAIT))
            except queue.Empty:
                break
        return group

    def _result_of(self, delivery: Delivery, future: Future[Attempted]) -> Attempted:
        try:
            attempted = future.result()
        except BaseException as exc:  # the thread's own failure: that delivery's error alone
            logger.exception("Webhook attempt thread failed for delivery %s", delivery.pk)
            error = f"internal error: {type(exc).__name__}: {exc}"[:1000]
            return Attempted(delivery, {}, HTTPResult(None, {}, b"", error))
        response = attempted.response
        if response is not None and response.unreachable:
            self.open_circuits.add(delivery.endpoint_id)
        return attempted

    def _attempt(
        self,
        delivery: Delivery,
        client: Transport,
        bodies: dict[str, bytes],
        signers: dict[int, Signer],
    ) -> Attempted:
        """In a worker thread: sign and POST, or hand back if the endpoint's circuit opened or
        the worker is stopping."""
        if delivery.endpoint_id in self.open_circuits or _stopping.is_set():
            return Attempted(delivery)
        now = timezone.now()
        span = self.telemetry.start_attempt(delivery, now) if self.telemetry else None
        trace_header = None
        if delivery.endpoint.send_traceparent:
            # The attempt's own span is the receiver's parent; without telemetry in this
            # worker, the context send_event stored.
            trace_header = (span.traceparent if span else "") or delivery.event.traceparent
        headers, response = send_attempt(
            delivery, client, bodies, signers, now, traceparent=trace_header
        )
        return Attempted(delivery, headers, response, timezone.now(), span)
