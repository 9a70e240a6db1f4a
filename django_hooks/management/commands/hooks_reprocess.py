"""Run stored inbound webhooks' handlers again, on the queue: by id, or by source, status and
time (default: every failed call)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from django_hooks.exceptions import QueueUnavailable
from django_hooks.inbound.queue import reprocess
from django_hooks.models import InboundWebhook


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="InboundWebhook ids.")
        parser.add_argument("--source", help="Only calls of this receiver (its source name).")
        parser.add_argument(
            "--status",
            default="failed",
            choices=[*InboundWebhook.Status.values, "any"],
            help="Only calls in this state (default failed).",
        )
        parser.add_argument("--since", help="ISO 8601 time, e.g. 2026-11-22T00:00:00Z")

    def handle(
        self,
        *args: Any,
        ids: list[int],
        source: str | None,
        status: str,
        since: str | None,
        **options: Any,
    ) -> None:
        calls = InboundWebhook.objects.all()
        if ids:
            calls = calls.filter(pk__in=ids)
        else:
            if status != "any":
                calls = calls.filter(status=status)
            if source:
                calls = calls.filter(source=source)
        if since:
            when = parse_datetime(since)
            if when is None:
                raise CommandError(f"--since {since!r} is not an ISO 8601 date-time.")
            calls = calls.filter(received_at__gte=when)
        try:
            count = reprocess(calls)
        except QueueUnavailable as exc:
            raise CommandError(
                f"{exc}. The calls are marked to run again: hooks_sweep (or "
                "hooks_worker's sweep) queues them once Redis is back."
            ) from None
        self.stdout.write(f"Queued {count} inbound webhooks to run again.")
