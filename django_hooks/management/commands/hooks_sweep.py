"""Re-enqueue webhook deliveries that are due but have no live job (lost by Redis, or whose
worker died mid-attempt), and received webhooks whose handler never finished. Run it
periodically, or keep it running with --loop SECONDS. (``hooks_worker`` sweeps by itself.)"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_hooks.exceptions import QueueUnavailable
from django_hooks.inbound.queue import sweep_calls
from django_hooks.outbound.sweep import DEFAULT_GRACE, sweep


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loop",
            type=float,
            metavar="SECONDS",
            help="Sweep again every SECONDS until interrupted.",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=DEFAULT_GRACE,
            metavar="SECONDS",
            help="How overdue a delivery must be before it counts as stranded "
            f"(default {DEFAULT_GRACE}).",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=10_000,
            help="At most this many deliveries per sweep (default 10000).",
        )

    def handle(
        self, *args: Any, loop: float | None, grace: float, limit: int, **options: Any
    ) -> None:
        if loop is not None and loop <= 0:
            raise CommandError("--loop must be a positive number of seconds.")
        if loop is not None:
            self.stdout.write(f"Sweeping every {loop:g}s; Ctrl-C stops.")
        try:
            self._sweep(loop, grace, limit, options["verbosity"])
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _sweep(self, loop: float | None, grace: float, limit: int, verbosity: int) -> None:
        while True:
            try:
                count = sweep(grace=grace, limit=limit)
                calls = sweep_calls(grace=grace, limit=limit)
            except QueueUnavailable as exc:
                if loop is None:
                    raise CommandError(str(exc)) from None
                self.stderr.write(f"hooks_sweep: {exc}; trying again in {loop}s")
            else:
                if count or verbosity > 1:
                    self.stdout.write(f"Enqueued {count} stranded deliveries.")
                if calls or verbosity > 1:
                    self.stdout.write(f"Enqueued {calls} unfinished inbound webhooks.")
            if loop is None:
                return
            time.sleep(loop)
