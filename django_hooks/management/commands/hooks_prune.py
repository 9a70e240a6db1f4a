"""Delete stored inbound calls older than INBOUND_RETENTION and finished events (with their
deliveries and attempts) older than EVENT_RETENTION. Run it daily."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from django_hooks.retention import prune


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        counts = prune()
        self.stdout.write(
            f"Deleted {counts['inbound']} inbound calls and {counts['events']} events."
        )
