"""The worker ``hooks_worker`` runs: RQ's ``SimpleWorker`` on the webhook queue, with its
scheduler and a periodic sweep, in one process and one command.

``SimpleWorker`` because jobs must run in the worker process itself: the delivery engine keeps
its attempt threads and keep-alive connections from one job to the next, which a worker that
forks a child per job would throw away each time. The sweep runs in a thread of the same
process every ``sweep_every`` seconds, so nothing waits for a separate ``hooks_sweep --loop``:
a delivery whose job Redis lost, or whose worker died while holding RQ's scheduler lock, is
picked up within seconds of its lease running out.

Stopping: the first Ctrl-C or SIGTERM asks a running drain to hand over (no new claims, not yet
started attempts handed back, attempts in flight finished within ``TIMEOUT``); a second one
stops at once, and what was in flight is retried when its lease runs out.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import connections
from rq.worker import SimpleWorker

from django_hooks.inbound.queue import sweep_calls
from django_hooks.outbound import engine
from django_hooks.outbound.sweep import sweep

__all__ = ["Worker"]

logger = logging.getLogger("django_hooks")

DEFAULT_SWEEP_EVERY = 10.0  # seconds between the worker's sweeps
SWEEP_GRACE = 5.0  # seconds a due delivery may wait for a drain before the sweep wakes one


class Worker(SimpleWorker):
    """RQ's ``SimpleWorker`` that asks a running delivery drain to hand over on a warm stop.

    Usable with plain ``rqworker --worker-class django_hooks.worker.Worker`` too.
    """

    def request_stop(self, signum: Any, frame: Any) -> None:
        engine.request_stop()
        super().request_stop(signum, frame)


class Sweeper(threading.Thread):
    """Every ``every`` seconds: wake a drain for stranded deliveries, re-enqueue stranded calls."""

    def __init__(self, every: float) -> None:
        super().__init__(name="django-hooks-sweep", daemon=True)
        self.every = every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                sweep(grace=SWEEP_GRACE)
                sweep_calls()
            except Exception:  # Redis or the database away: the next round tries again
                logger.warning(
                    "The worker's sweep failed; trying again in %ss", self.every, exc_info=True
                )
            finally:
                connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
