"""Per endpoint: deliveries succeeded, failed and pending, success rate, and the p50/p95 latency
of its HTTP attempts, over a window (default: the last 24 hours)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_hooks.management.arguments import moment
from django_hooks.models import Endpoint
from django_hooks.outbound.operations import attempt_latency, delivery_counts


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--endpoint",
            type=int,
            action="append",
            metavar="ID",
            help="Only this endpoint (repeatable).",
        )
        parser.add_argument(
            "--since",
            type=moment,
            help="Window start: ISO 8601, or an age such as 7d (default 24h).",
        )
        parser.add_argument("--until", type=moment, help="Window end (default now).")

    def handle(
        self,
        *args: Any,
        endpoint: list[int] | None,
        since: dt.datetime | None,
        until: dt.datetime | None,
        **options: Any,
    ) -> None:
        since = since or timezone.now() - dt.timedelta(hours=24)
        if until and until <= since:
            raise CommandError("--until must be later than --since.")
        endpoints = Endpoint.objects.order_by("pk").only("pk", "url")
        if endpoint:
            endpoints = endpoints.filter(pk__in=endpoint)
        rows = list(endpoints.values_list("pk", "url"))
        if endpoint and len(rows) < len(set(endpoint)):
            missing = set(endpoint) - {pk for pk, _ in rows}
            raise CommandError(f"No endpoint with id {', '.join(map(str, sorted(missing)))}.")
        ids = [pk for pk, _ in rows]
        counts = delivery_counts(ids, since=since, until=until)
        latency = attempt_latency(ids, since=since, until=until)
        window = f"{since:%Y-%m-%d %H:%M}" + (f" to {until:%Y-%m-%d %H:%M}" if until else " to now")
        self.stdout.write(f"Deliveries created {window} ({timezone.get_current_timezone_name()})")
        table = [("id", "url", "succeeded", "failed", "pending", "success", "p50 ms", "p95 ms")]
        for pk, url in rows:
            c, lat = counts[pk], latency[pk]
            rate = "-" if c.success_rate is None else f"{c.success_rate:.1%}"
            table.append(
                (
                    str(pk),
                    url,
                    str(c.succeeded),
                    str(c.failed),
                    str(c.pending),
                    rate,
                    _ms(lat.p50),
                    _ms(lat.p95),
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for number, row in enumerate(table):
            cells = [
                cell.ljust(w) if i == 1 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            self.stdout.write("  ".join(cells).rstrip())
            if number == 0:
                self.stdout.write("  ".join("-" * w for w in widths))


def _ms(value: int | None) -> str:
    return "-" if value is None else str(value)
