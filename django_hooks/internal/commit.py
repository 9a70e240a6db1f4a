"""After-commit work done once per transaction, not once per row.

A transaction that sends 2,000 events should make full ``BATCH_SIZE`` delivery jobs and one feed
wake-up per owner, not 2,000 small jobs and 2,000 ``PUBLISH``es. ``on_commit_batch`` collects the
items of one transaction per handler and calls each handler once, with all of them, on commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, transaction

__all__: list[str] = []

Handler = Callable[[list[Any], str], None]


class _Batch:
    """One handler's items in one transaction; the callable Django runs on commit."""

    def __init__(self, handler: Handler, using: str) -> None:
        self.handler = handler
        self.using = using
        self.items: list[Any] = []
        self.__qualname__ = getattr(handler, "__qualname__", repr(handler))  # Django logs it

    def __call__(self) -> None:
        items, self.items = self.items, []
        if items:
            self.handler(items, self.using)


def on_commit_batch(handler: Handler, items: Iterable[Any], *, using: str) -> None:
    """Call ``handler(items, using)`` once when the current transaction on ``using`` commits,
    with every item collected for the same handler in that transaction.

    Items added inside a savepoint that later rolls back stay in the batch (only a callback
    registered inside it is dropped), so handlers must tolerate rows that were never committed:
    the delivery worker skips a missing delivery, the feed's update matches no row. ``robust``:
    a handler that raises is logged by Django, never raised to the code that committed.
    """
    connection = connections[using]
    batches: dict[Handler, _Batch] = connection.__dict__.setdefault("_django_hooks_batches", {})
    batch = batches.get(handler)
    # Django drops a callback whose savepoint or transaction rolled back: start a new batch then.
    if batch is not None and any(entry[1] is batch for entry in connection.run_on_commit):
        batch.items.extend(items)
        return
    batch = batches[handler] = _Batch(handler, using)
    batch.items.extend(items)
    # Outside a transaction (autocommit) this runs the handler at once.
    transaction.on_commit(batch, using=using, robust=True)
