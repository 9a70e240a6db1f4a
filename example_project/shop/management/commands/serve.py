"""Serve the example shop on localhost for browsing the admin: applies migrations, creates the
demo customers and an admin login, then runs the site and a webhook worker (which sweeps)
together (with an embedded Redis unless REDIS_URL is set). Ctrl-C or SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from django_hooks.portal import signed_link
from django_hooks.testing import local_redis
from shop.example_site import (
    CUSTOMERS,
    check_port_free,
    manage,
    receiver_secrets,
    reset_password,
    set_up_customers,
    stop,
    wait_for_port,
)
from shop.models import Order


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=8000, help="Port of the site on 127.0.0.1 (default 8000)."
        )
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=10,
            metavar="SECONDS",
            help="How often the sweep re-enqueues stranded deliveries (default 10).",
        )

    def handle(self, *args: Any, port: int, sweep_every: float, **options: Any) -> None:
        check_port_free(port)
        stop_signals: list[int] = []
        previous = {
            signum: signal.signal(signum, lambda signum, frame: stop_signals.append(signum))
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            with local_redis() as redis_url:
                self.serve(redis_url, port, sweep_every, stop_signals)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("Stopped the site, the worker and Redis.")

    def serve(self, redis_url: str, port: int, sweep_every: float, stop_signals: list[int]) -> None:
        settings.RQ_QUEUES["default"]["URL"] = redis_url
        call_command("migrate", verbosity=0)
        site_url = f"http://127.0.0.1:{port}"
        accounts = set_up_customers(site_url)
        admin_password = reset_password("admin", superuser=True)
        passwords = {slug: reset_password(slug) for slug, _, _ in CUSTOMERS}
        for customer, _ in accounts:
            if not customer.orders.exists():  # something in the admin on the first run
                with transaction.atomic():
                    Order.objects.create(
                        customer=customer, total="25.00", customer_email=customer.user.email
                    )  # type: ignore[union-attr]
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "RECEIVER_WEBHOOK_SECRETS": receiver_secrets(accounts),
        }
        if stop_signals:
            return
        children = {
            "site": manage("runserver", f"127.0.0.1:{port}", "--noreload", env=env),
            "worker": manage("hooks_worker", "--sweep-every", str(sweep_every), env=env),
        }
        try:
            wait_for_port(port, children["site"])
            lines = [
                "",
                "The example shop is running:",
                f"  Admin        {site_url}/admin/  (user admin, password {admin_password})",
                f"  REST API     {site_url}/api/hooks/  (each customer sees only its own objects)",
                *(
                    f"               curl -u {slug}:{password} {site_url}/api/hooks/endpoints/"
                    for slug, password in passwords.items()
                ),
                f"  Portal       {site_url}/webhooks/  (log in as a customer above), or embedded "
                f"in the account page {site_url}/account/webhooks/",
                *(
                    f"               {site_url}{signed_link(customer, expires_in=3600)}  "
                    f"({customer.name}'s signed link, 1 hour)"
                    for customer, _ in accounts
                ),
                *(
                    f"  Receiver     {endpoint.url}  ({customer.name}'s endpoint)"
                    for customer, endpoint in accounts
                ),
                f"  GitHub hook  {site_url}/hooks/github/  (secret: $GITHUB_WEBHOOK_SECRET or the settings' default)",
                f"  Redis        {redis_url}",
                "  Processes    "
                + ", ".join(f"{name} pid {p.pid}" for name, p in children.items()),
                "Change an order in the admin to send order.updated to its customer's endpoint.",
                "Press Ctrl-C to stop.",
                "",
            ]
            self.stdout.write("\n".join(lines))
            self.stdout.flush()
            while not stop_signals:
                for name, process in children.items():
                    if process.poll() is not None:
                        raise CommandError(f"the {name} exited with status {process.returncode}")
                time.sleep(0.2)
            self.stdout.write(f"\nStopping (signal {signal.Signals(stop_signals[0]).name})…")
        finally:
            stop(list(children.values()))
