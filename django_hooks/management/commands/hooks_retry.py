"""Send failed (or cancelled) deliveries again, chosen by endpoint, status and creation time.
It counts what matches first; --dry-run stops there."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_hooks.management.arguments import moment
from django_hooks.models import Delivery, Endpoint
from django_hooks.outbound.operations import find_deliveries
from django_hooks.outbound.state import retry_deliveries

STATUSES = {
    "failed": [Delivery.Status.FAILED],
    "cancelled": [Delivery.Status.CANCELLED],
    "any": [Delivery.Status.FAILED, Delivery.Status.CANCELLED],
}


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--endpoint",
            type=int,
            action="append",
            metavar="ID",
            help="Only this endpoint's deliveries (repeatable).",
        )
        parser.add_argument(
            "--status",
            choices=sorted(STATUSES),
            default="failed",
            help="failed (default), cancelled or any.",
        )
        parser.add_argument(
            "--since", type=moment, help="Created at or after: ISO 8601, or an age like 24h."
        )
        parser.add_argument(
            "--until", type=moment, help="Created before: ISO 8601, or an age such as 1h."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be sent again; send nothing."
        )

    def handle(
        self,
        *args: Any,
        endpoint: list[int] | None,
        status: str,
        since: dt.datetime | None,
        until: dt.datetime | None,
        dry_run: bool,
        **options: Any,
    ) -> None:
        if since and until and until <= since:
            raise CommandError("--until must be later than --since.")
        if endpoint:
            missing = set(endpoint) - set(
                Endpoint.objects.filter(pk__in=endpoint).values_list("pk", flat=True)
            )
            if missing:
                raise CommandError(f"No endpoint with id {', '.join(map(str, sorted(missing)))}.")
        deliveries = find_deliveries(
            endpoint_ids=endpoint, statuses=STATUSES[status], since=since, until=until
        )
        count = deliveries.count()
        self.stdout.write(f"{count} {status} deliveries match.")
        if dry_run or not count:
            return
        queued = retry_deliveries(deliveries)
        self.stdout.write(f"Queued {queued} deliveries to be sent again.")
