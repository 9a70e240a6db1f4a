"""What `manage.py demo` and `manage.py serve` share: the customer accounts with their
endpoints, the child processes of the local site, and a GitHub-signed request."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction

from django_hooks import testing
from django_hooks.models import Endpoint
from shop.models import Customer

MANAGE = str(Path(__file__).resolve().parents[1] / "manage.py")

# (slug, name, contact email): each account gets a login of the same name for the REST API.
CUSTOMERS = [
    ("acme", "Acme Ltd", "orders@acme.example"),
    ("globex", "Globex Corporation", "purchasing@globex.example"),
]


def set_up_customers(site_url: str) -> list[tuple[Customer, Endpoint]]:
    """Each customer account and the endpoint it owns on the local receiver (idempotent)."""
    accounts = []
    with transaction.atomic():
        for slug, name, email in CUSTOMERS:
            user, _ = get_user_model().objects.get_or_create(
                username=slug, defaults={"email": email}
            )
            customer, _ = Customer.objects.update_or_create(
                slug=slug, defaults={"name": name, "user": user}
            )
            url = f"{site_url}/receiver/{slug}/webhooks/"
            endpoint = Endpoint.objects.owned_by(customer).order_by("pk").first()
            if endpoint is None:
                endpoint = Endpoint.objects.create(
                    url=url,
                    event_types=["order.*"],
                    owner=customer,
                    description=f"{name}'s order system",
                )
            elif endpoint.url != url:  # the site moved to another port since the last run
                endpoint.url = url
                endpoint.save(update_fields=["url"])
            accounts.append((customer, endpoint))
    return accounts


def receiver_secrets(accounts: list[tuple[Customer, Endpoint]]) -> str:
    """RECEIVER_WEBHOOK_SECRETS for the receiver app: each customer verifies with its secret."""
    return json.dumps({customer.slug: endpoint.secret for customer, endpoint in accounts})


def reset_password(username: str, *, superuser: bool = False) -> str:
    """A fresh password for ``username`` (created if missing): $DJANGO_SUPERUSER_PASSWORD or random."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") if superuser else None
    password = password or secrets.token_urlsafe(9)
    user.set_password(password)
    if superuser:
        user.is_staff = user.is_superuser = True
        user.email = user.email or f"{username}@example.com"
    user.save()
    return password


def github_request(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A push webhook exactly as GitHub sends it: the body and its signed headers."""
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/example",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the command that started it dies without cleaning up
    # (say, kill -9), so no worker or site outlives it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def manage(
    *args: str, env: dict[str, str], output: IO[Any] | int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``manage.py <args>`` in its own session, so that a Ctrl-C reaches only our handler."""
    return subprocess.Popen(
        [sys.executable, MANAGE, *args],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def stop(processes: list[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """SIGTERM each process (the worker finishes its job in hand), SIGKILL what outlives ``timeout``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_port_free(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise CommandError(
                f"port {port} on 127.0.0.1 is in use; choose another with --port"
            ) from None


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    try:
        testing.wait_for_port(port, process, timeout=timeout)
    except RuntimeError as exc:
        raise CommandError(f"the site on port {port}: {exc}") from None
