"""Issue 15, storage amplification: a receiver or a tenant cannot make one attempt store
megabytes: response headers, ``last_error`` and tenant headers are bounded."""

from __future__ import annotations

import socket
import threading

import pytest
from django.core.exceptions import ValidationError

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.outbound.delivery import (
    MAX_STORED_HEADERS_TOTAL,
    bounded_headers,
    describe_failure,
)

pytestmark = pytest.mark.django_db


def test_stored_response_headers_are_bounded_in_value_and_in_total():
    hostile = {f"x-h{n}": "v" * 65_536 for n in range(100)}
    stored = bounded_headers(hostile)
    assert all(len(value) <= 1024 for value in stored.values())
    assert sum(len(k) + len(v) for k, v in stored.items()) <= MAX_STORED_HEADERS_TOTAL + 64
    assert stored["x-django-hooks-truncated"]
    assert bounded_headers({"retry-after": "120"}) == {"retry-after": "120"}


def test_a_redirect_location_cannot_flood_last_error():
    error = describe_failure(302, "", {"location": "https://x.example/" + "a" * 100_000})
    assert error.startswith("HTTP 302: redirects are not followed (to https://x.example/")
    assert len(error) < 300
    assert len(describe_failure(None, "e" * 100_000, {})) == 1000


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({f"X-H{n}": "v" for n in range(21)}, "At most 20 headers"),
        ({"X-" + "a" * 100: "v"}, "over 64 characters"),
        ({"X-Key": "v" * 1025}, "over 1024 characters"),
        ({"Proxy-Authorization": "Basic x"}, "cannot be replaced"),
        ({"Forwarded": "for=1.2.3.4"}, "cannot be replaced"),
        ({"Keep-Alive": "timeout=5"}, "cannot be replaced"),
        ({"Host": "internal"}, "cannot be replaced"),
        ({"Content-Length": "1"}, "cannot be replaced"),
        ({"Webhook-Signature": "v1,x"}, "cannot be replaced"),
    ],
)
def test_tenant_headers_are_bounded_and_hop_by_hop_names_refused(headers, message):
    endpoint = Endpoint(url="https://customer.example/hooks", headers=headers)
    with pytest.raises(ValidationError, match=message):
        endpoint.full_clean()


def huge_header_receiver() -> tuple[int, threading.Thread]:
    """A receiver on 127.0.0.1 answering one POST with 90 headers of 60 KiB each."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        connection, _ = server.accept()
        with connection, server:
            connection.settimeout(10)
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            # Read the body too: closing with unread request bytes would reset the connection.
            head, _, body = received.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:
                body += connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n"
            fat = b"".join(b"X-Fat-%d: %s\r\n" % (n, b"v" * 61_440) for n in range(90))
            connection.sendall(head + fat + b"\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_a_receiver_answering_huge_headers_stores_a_bounded_attempt(settings):
    from django_hooks.outbound.engine import Drain

    port, thread = huge_header_receiver()
    settings.DJANGO_HOOKS = {**settings.DJANGO_HOOKS, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}
    Endpoint.objects.create(url=f"http://127.0.0.1:{port}/hooks")
    django_hooks.send_event("order.paid", {"id": 1})
    Drain(seconds=1).run()
    thread.join(10)
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code == 200, attempt.error
    stored = sum(len(k) + len(v) for k, v in attempt.response_headers.items())
    assert stored <= MAX_STORED_HEADERS_TOTAL + 64  # of 5.3 MiB sent
    assert attempt.delivery.status == Delivery.Status.SUCCEEDED
