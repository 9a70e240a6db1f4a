"""Run the example end to end: a real Redis, the site on localhost, two customer accounts each
owning an endpoint on the receiver app, a few orders, a worker until every webhook is delivered,
a signed and a forged GitHub webhook, and a report of what happened."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from django_hooks.core.signing import signature_header
from django_hooks.models import Delivery, Endpoint, Event, InboundWebhook, owner_q
from django_hooks.outbound import wakeups
from django_hooks.testing import free_port, local_redis
from shop.example_site import (
    MANAGE,
    github_request,
    manage,
    receiver_secrets,
    set_up_customers,
    stop,
    wait_for_port,
)
from shop.models import Customer, Order


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=60,
            help="Seconds to wait for every delivery to settle (default 60).",
        )

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        with local_redis() as redis_url:
            settings.RQ_QUEUES["default"]["URL"] = redis_url
            wakeups.get_queue().connection.flushdb()
            self.stdout.write(f"Redis: {redis_url}")
            call_command("migrate", verbosity=0)
            call_command("flush", interactive=False, verbosity=0)
            ok = self.run_demo(redis_url, timeout)
        if not ok:
            raise CommandError("Not every webhook was delivered and verified.")
        self.stdout.write(self.style.SUCCESS("\nAll webhooks delivered and verified."))

    def run_demo(self, redis_url: str, timeout: float) -> bool:
        port = free_port()
        site_url = f"http://127.0.0.1:{port}"
        accounts = set_up_customers(site_url)
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "RECEIVER_WEBHOOK_SECRETS": receiver_secrets(accounts),
        }
        site = manage(
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
            "--skip-checks",
            env=env,
            output=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, site)
            self.stdout.write(f"Site (shop and receiver): {site_url}")
            self.place_orders({customer.slug: customer for customer, _ in accounts})
            self.stdout.write(
                f"Recorded {Event.objects.count()} events and {Delivery.objects.count()} "
                "deliveries; running a worker…"
            )
            self.deliver(env, timeout)
            inbound_ok, inbound_lines = self.github(site_url)
            crossed_ok, crossed_line = self.cross_customer(accounts)
        finally:
            stop([site])
        outbound_ok = all([self.report(customer, endpoint) for customer, endpoint in accounts])
        self.stdout.write("")
        for line in inbound_lines:
            self.stdout.write(line)
        self.stdout.write(crossed_line)
        return outbound_ok and inbound_ok and crossed_ok

    def cross_customer(self, accounts: list[tuple[Customer, Endpoint]]) -> tuple[bool, str]:
        """Sign a webhook with one customer's secret and post it to the other's receiver."""
        (first, first_endpoint), (second, second_endpoint) = accounts[:2]
        body = json.dumps(
            {
                "type": "order.updated",
                "timestamp": "2026-01-01T00:00:00Z",
                "data": {"id": 1, "status": "refunded"},
            }
        ).encode()
        msg_id, timestamp = f"msg_forged_{int(time.time())}", int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header([first_endpoint.secret], msg_id, timestamp, body),
        }
        response = requests.post(second_endpoint.url, data=body, headers=headers, timeout=10)
        refused = 400 <= response.status_code < 500
        return refused, (
            f"  order webhook signed with {first.slug}'s secret, sent to {second.slug}'s receiver:  "
            f"{'refused' if refused else 'NOT REFUSED'} (HTTP {response.status_code} "
            f"{response.text.strip()})"
        )

    def place_orders(self, customers: dict[str, Customer]) -> None:
        # Model events: each change records its order.* event in the change's own transaction.
        with transaction.atomic():
            first = Order.objects.create(
                customer=customers["acme"], total="42.00", customer_email="ada@acme.example"
            )
        with transaction.atomic():
            first.status = "paid"
            first.save()
        with transaction.atomic():
            second = Order.objects.create(
                customer=customers["globex"], total="9.90", customer_email="grace@globex.example"
            )
        with transaction.atomic():
            second.delete()

    def deliver(self, env: dict[str, str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
            if time.monotonic() > deadline:
                return
            subprocess.run(
                [sys.executable, MANAGE, "hooks_worker", "--burst"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.2)

    def report(self, customer: Customer, endpoint: Endpoint) -> bool:
        """Print one customer's deliveries; True if each was delivered and verified by its receiver."""
        from receiver.models import ReceivedWebhook

        self.stdout.write(f"\n{customer.name} ({customer.slug}): endpoint {endpoint.url}")
        events = set(Event.objects.filter(owner_q(customer)).values_list("id", flat=True))
        received = set(
            ReceivedWebhook.objects.filter(customer=customer.slug).values_list(
                "webhook_id", flat=True
            )
        )
        rows = [("event", "type", "status", "attempts", "verified by receiver")]
        ok = bool(events)
        for delivery in (
            Delivery.objects.filter(event_id__in=events)
            .select_related("event", "endpoint")
            .order_by("event_id")
        ):
            verified = delivery.event_id in received and delivery.endpoint_id == endpoint.pk
            ok = ok and delivery.status == Delivery.Status.SUCCEEDED and verified
            rows.append(
                (
                    delivery.event_id,
                    delivery.event.type,
                    delivery.status,
                    str(delivery.attempts),
                    "yes" if verified else "NO",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for number, row in enumerate(rows):
            self.stdout.write(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
            if number == 0:
                self.stdout.write("  " + "  ".join("-" * width for width in widths))
        foreign = received - events
        isolated = not foreign and received == events
        ok = ok and isolated
        self.stdout.write(
            f"  Its receiver got {len(received)} webhooks, "
            + ("all of them its own." if not foreign else f"{len(foreign)} of another customer!")
        )
        return ok

    def github(self, site_url: str) -> tuple[bool, list[str]]:
        """Post a correctly signed GitHub push, then a forged one; True if only the first got in,
        and the lines to report."""
        url = f"{site_url}/hooks/github/"
        payload = {
            "ref": "refs/heads/main",
            "pusher": {"name": "octocat"},
            "repository": {"full_name": "example/storefront-theme"},
        }
        body, headers = github_request(settings.GITHUB_WEBHOOK_SECRET, payload)
        signed = requests.post(url, data=body, headers=headers, timeout=10)
        forged_body, forged_headers = github_request("not-the-shared-secret", payload)
        forged = requests.post(url, data=forged_body, headers=forged_headers, timeout=10)
        # GitHub does not sign its delivery id, so calls are told apart by the signed body.
        calls = InboundWebhook.objects.filter(source="github").order_by("pk")
        stored = calls.filter(webhook_id="sha256:" + hashlib.sha256(body).hexdigest()).first()
        accepted = (
            signed.ok and stored is not None and stored.status == InboundWebhook.Status.PROCESSED
        )
        refused = 400 <= forged.status_code < 500 and calls.count() == 1
        lines = [f"Inbound webhooks (GitHub's at {url})"]
        lines.append(
            f"  GitHub signed push:  {'accepted' if accepted else 'NOT ACCEPTED'} (HTTP {signed.status_code}"
            + (f", stored as inbound call {stored.pk}, {stored.status})" if stored else ")")
        )
        lines.append(
            f"  GitHub forged push:  {'refused' if refused else 'NOT REFUSED'} "
            f"(HTTP {forged.status_code} {forged.text.strip()})"
        )
        return accepted and refused, lines
