"""Send an endpoint the events it missed while it was disabled, enabling it first if it still
is: its owner's events matching its subscriptions, created during its disabled spell (or from
--since), that it has no delivery of. Running it again adds nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_hooks.management.arguments import moment
from django_hooks.models import Endpoint
from django_hooks.outbound.state import replay_missing


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("endpoint_id", type=int, help="The endpoint's id.")
        parser.add_argument(
            "--since",
            type=moment,
            help="Events created at or after: ISO 8601, or an age like 24h "
            "(default: when the endpoint was disabled).",
        )
        parser.add_argument(
            "--until",
            type=moment,
            help="Events created before (default: when it was enabled again, or "
            "now; with --since, now).",
        )

    def handle(
        self,
        *args: Any,
        endpoint_id: int,
        since: dt.datetime | None,
        until: dt.datetime | None,
        **options: Any,
    ) -> None:
        endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None:
            raise CommandError(f"No endpoint with id {endpoint_id}.")
        try:
            done = replay_missing(endpoint, since=since, until=until)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if done.enabled:
            self.stdout.write(f"Enabled endpoint {endpoint_id}.")
        window = (
            f"{timezone.localtime(done.since):%Y-%m-%d %H:%M:%S} to "
            f"{timezone.localtime(done.until):%Y-%m-%d %H:%M:%S}"
        )
        self.stdout.write(f"Queued {done.count} missed events ({window}).")
