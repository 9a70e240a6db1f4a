"""Run a webhook worker: sends outbound deliveries, runs queued inbound handlers, schedules
retries and sweeps up anything stranded. Run one or more per machine; Ctrl-C or SIGTERM stops it
cleanly (a second one stops at once)."""

from __future__ import annotations

from typing import Any

import django_rq
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_hooks.conf import hooks_settings
from django_hooks.inbound.queue import queue_name as inbound_queue_name
from django_hooks.worker import DEFAULT_SWEEP_EVERY, Sweeper, Worker


def redis_location(connection: Any) -> str:
    """Where the worker's Redis is, for the start-up line; never the password."""
    kwargs = connection.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "queues",
            nargs="*",
            metavar="QUEUE",
            help="RQ queues to serve (default: the QUEUE and INBOUND_QUEUE settings).",
        )
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=DEFAULT_SWEEP_EVERY,
            metavar="SECONDS",
            help="Seconds between sweeps for stranded work "
            f"(default {DEFAULT_SWEEP_EVERY:g}; 0: no sweep).",
        )
        parser.add_argument(
            "--burst", action="store_true", help="Stop once the queues are empty (scripts, tests)."
        )

    def handle(
        self, *args: Any, queues: list[str], sweep_every: float, burst: bool, **options: Any
    ) -> None:
        if sweep_every < 0:
            raise CommandError("--sweep-every must be 0 (no sweep) or a number of seconds.")
        names = queues or list(dict.fromkeys([hooks_settings.QUEUE, inbound_queue_name()]))
        try:
            # django-rq annotates worker_class as the forking Worker; SimpleWorker is a sibling.
            worker = django_rq.get_worker(*names, worker_class=Worker)  # type: ignore[arg-type]
            worker.connection.ping()
        except KeyError as exc:
            raise CommandError(f"No queue named {exc} in the RQ_QUEUES setting.") from None
        except Exception as exc:
            raise CommandError(
                f"Could not reach the queue's Redis ({type(exc).__name__}: {exc}). Start one "
                "(redis-server), or point RQ_QUEUES at yours; docs/quickstart.md shows how."
            ) from None
        sweeper = Sweeper(sweep_every) if sweep_every and not burst else None
        self.stdout.write(
            f"django-hooks worker {worker.name}: queues {', '.join(names)} on "
            f"{redis_location(worker.connection)}; up to {hooks_settings.CONCURRENCY} attempts "
            "in flight; "
            + (f"sweeping every {sweep_every:g}s. " if sweeper else "no sweep. ")
            + ("Stops when the queues are empty." if burst else "Ctrl-C stops.")
        )
        if sweeper is not None:
            sweeper.start()
        try:
            level = "WARNING" if options["verbosity"] < 2 else "INFO"
            worker.work(with_scheduler=True, burst=burst, logging_level=level)
        except KeyboardInterrupt:
            pass
        finally:
            if sweeper is not None:
                sweeper.stop()
        self.stdout.write(f"django-hooks worker {worker.name} stopped.")
