"""Delete stored inbound calls older than INBOUND_RETENTION and finished events (with their
deliveries and attempts) older than EVENT_RETENTION, in batches; nothing still pending is
touched, so it is safe while workers run. Also deletes REST API idempotency keys past their
24 hours. Run it daily."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_hooks.api.idempotency import prune_idempotency_keys
from django_hooks.internal.retention import prune
from django_hooks.management.arguments import duration


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=duration,
            metavar="AGE",
            help="Delete what is older than AGE (e.g. 30d, 12h) instead of the retention settings.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows deleted per transaction (default 1000).",
        )

    def handle(
        self, *args: Any, older_than: dt.timedelta | None, batch_size: int, **options: Any
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        counts = prune(older_than=older_than, batch_size=batch_size)
        self.stdout.write(
            f"Deleted {counts['inbound']} inbound calls and {counts['events']} events."
        )
        self.stdout.write(
            f"Deleted {counts['deliveries']} deliveries and {counts['attempts']} attempts "
            "with those events."
        )
        keys = prune_idempotency_keys()
        self.stdout.write(f"Deleted {keys} expired REST API idempotency keys.")
