"""Run the example end to end: a real Redis, the receiver site on localhost, a few orders,
a worker until every webhook is delivered, and a table of what happened."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from django_hooks.models import Delivery, Endpoint
from django_hooks.outbound import tasks
from django_hooks.testing import free_port, local_redis

MANAGE = str(Path(__file__).resolve().parents[3] / "manage.py")


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError("the receiver site exited during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise CommandError(f"the receiver site did not listen on port {port}")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=60)

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        with local_redis() as redis_url:
            settings.RQ_QUEUES["default"]["URL"] = redis_url
            tasks.reset()
            tasks.get_queue().connection.flushdb()
            self.stdout.write(f"Redis: {redis_url}")
            call_command("migrate", verbosity=0)
            call_command("flush", interactive=False, verbosity=0)
            ok = self.run_demo(redis_url, timeout)
        if not ok:
            raise CommandError("Not every webhook was delivered and verified.")
        self.stdout.write(self.style.SUCCESS("All webhooks delivered and verified."))

    def run_demo(self, redis_url: str, timeout: float) -> bool:
        from receiver.models import ReceivedWebhook

        from shop.models import Order

        port = free_port()
        endpoint = Endpoint.objects.create(
            url=f"http://127.0.0.1:{port}/receiver/webhooks/",
            event_types=["order.*"],
            description="The example receiver site",
        )
        env = {**os.environ, "REDIS_URL": redis_url, "RECEIVER_WEBHOOK_SECRET": endpoint.secret}
        receiver = subprocess.Popen(
            [sys.executable, MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port, receiver)
            self.stdout.write(f"Receiver site: {endpoint.url}")

            # Model events: each change below records an order.* event in the same transaction.
            first = Order.objects.create(customer_email="ada@example.com", total="42.00")
            second = Order.objects.create(customer_email="grace@example.com", total="9.90")
            first.status = "paid"
            first.save()
            second.delete()
            self.stdout.write(f"Recorded {Delivery.objects.count()} deliveries; running a worker…")

            deadline = time.monotonic() + timeout
            while Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
                if time.monotonic() > deadline:
                    break
                subprocess.run(
                    [sys.executable, MANAGE, "rqworker", "default", "--burst", "--with-scheduler",
                     "--worker-class", "rq.worker.SimpleWorker"],
                    env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(0.2)
        finally:
            receiver.terminate()
            receiver.wait(timeout=10)

        verified = set(ReceivedWebhook.objects.values_list("webhook_id", flat=True))
        rows = [("event", "type", "endpoint", "status", "attempts", "signature verified")]
        ok = True
        for delivery in Delivery.objects.select_related("event", "endpoint").order_by("event_id"):
            is_verified = delivery.event_id in verified
            ok = ok and delivery.status == Delivery.Status.SUCCEEDED and is_verified
            rows.append((delivery.event_id, delivery.event.type, delivery.endpoint.url,
                         delivery.status, str(delivery.attempts), "yes" if is_verified else "NO"))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for number, row in enumerate(rows):
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            )
            if number == 0:
                self.stdout.write("  ".join("-" * width for width in widths))
        return ok
