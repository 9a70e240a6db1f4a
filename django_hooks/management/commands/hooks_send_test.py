"""Send a test event (TEST_EVENT_TYPE, "webhook.test" by default) to one endpoint, whatever it
subscribes to; a worker delivers it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_hooks.exceptions import EndpointNotReceiving, InvalidEventType
from django_hooks.models import Endpoint
from django_hooks.outbound.operations import send_test_event


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("endpoint", type=int, help="The endpoint's id.")
        parser.add_argument(
            "--type",
            dest="event_type",
            help="A declared event type with an example, instead of TEST_EVENT_TYPE.",
        )

    def handle(self, *args: Any, endpoint: int, event_type: str | None, **options: Any) -> None:
        target = Endpoint.objects.filter(pk=endpoint).first()
        if target is None:
            raise CommandError(f"There is no endpoint with id {endpoint}.")
        try:
            event = send_test_event(target, event_type=event_type)
        except (EndpointNotReceiving, InvalidEventType) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Sent test event {event.pk} ({event.type}) to {target.url}.")
