"""The RQ jobs that run the engine: ``drain`` (what every wake-up enqueues) and ``deliver``.
Waking them is ``django_hooks.outbound.wakeups``; the queue itself, ``django_hooks.internal.queue``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django_hooks.conf import hooks_settings
from django_hooks.internal.queue import close_stale_connections
from django_hooks.outbound import claims
from django_hooks.outbound.emails import send_owner_email
from django_hooks.outbound.engine import Drain
from django_hooks.outbound.wakeups import get_queue, schedule_wake, wake, wake_marker

__all__: list[str] = []

logger = logging.getLogger("django_hooks")


def _run(run: Drain) -> dict[str, int]:
    close_stale_connections()
    try:
        result = run.run()
        if run.more_due:
            wake()
        else:
            soonest = claims.next_due_at()
            if soonest is not None:
                schedule_wake(soonest)
    finally:
        close_stale_connections()
    return result.summary()


def drain() -> dict[str, int]:
    """The RQ job: attempt due deliveries, ``CONCURRENCY`` at a time, until none is due."""
    try:
        queue = get_queue()
        queue.connection.delete(wake_marker(queue))
    except Exception:
        logger.warning("Could not clear the wake-up marker", exc_info=True)
    return _run(Drain(wake_helper=wake, watchdog=watch_leases))


def watch_leases(at: dt.datetime) -> None:
    """A drain at ``at`` (just past a drain's leases), one per third of a lease at most."""
    schedule_wake(at, every=max(1, int(float(hooks_settings.LEASE) / 3)))


def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """Attempt the given deliveries (those still due and unclaimed), each at most once."""
    return _run(Drain(only=delivery_ids))


def email_owner(endpoint_id: int, kind: str, details: dict[str, object]) -> int:
    """The RQ job behind ``OWNER_EMAILS``: one email to an endpoint's owner."""
    return send_owner_email(endpoint_id, kind, details)
