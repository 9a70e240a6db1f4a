"""``django_hooks.testing.webhook_outbox``: what a user's own tests use to assert on webhooks,
with no Redis and no network, as they use ``mail.outbox`` for email."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.db import transaction

import django_hooks
from django_hooks.core.signing import verify_headers
from django_hooks.models import Delivery, Endpoint
from django_hooks.testing import webhook_outbox

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_events_are_captured_and_deliver_posts_signed_webhooks_through_the_engine():
    endpoint = Endpoint.objects.create(
        url="https://customer.example/hooks", secret=SECRET, event_types=["order.*"]
    )
    Endpoint.objects.create(url="https://other.example/hooks", event_types=["invoice.*"])
    with webhook_outbox() as outbox:
        django_hooks.send_event("order.paid", {"id": 42})
        assert [event.type for event in outbox.events] == ["order.paid"]
        assert outbox.sent == []  # nothing goes out until the engine runs
        (sent,) = outbox.deliver()

    assert sent.url == "https://customer.example/hooks"
    assert sent.type == "order.paid" and sent.data == {"id": 42}
    msg_id, _ = verify_headers(SECRET, sent.headers, sent.body)
    assert msg_id == outbox.events[0].id
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert delivery.attempt_log.get().status_code == 200


def test_the_answer_drives_the_outcome_like_a_real_receiver():
    Endpoint.objects.create(url="https://a.example/hooks")
    Endpoint.objects.create(url="https://b.example/hooks")
    with webhook_outbox(answer=lambda sent: 200 if "a.example" in sent.url else 503) as outbox:
        django_hooks.send_event("order.paid", {"id": 1})
        assert len(outbox.deliver()) == 2
    statuses = dict(Delivery.objects.values_list("endpoint__url", "status"))
    assert statuses == {
        "https://a.example/hooks": "succeeded",
        "https://b.example/hooks": "pending",
    }
    failed = Delivery.objects.get(status="pending")
    assert failed.attempts == 1 and failed.last_status_code == 503


@pytest.mark.django_db(transaction=True)
def test_no_redis_is_needed_and_rolled_back_events_are_not_there(caplog):
    Endpoint.objects.create(url="https://customer.example/hooks")
    queue = settings.RQ_QUEUES["default"]
    previous, queue["URL"] = queue["URL"], "redis://127.0.0.1:1/0"  # nothing listens there

    try:
        with caplog.at_level(logging.WARNING, logger="django_hooks"), webhook_outbox() as outbox:
            with transaction.atomic():
                django_hooks.send_event("order.paid", {"id": 1})
            with transaction.atomic():
                django_hooks.send_event("order.refunded", {"id": 1})
                transaction.set_rollback(True)
            assert [event.type for event in outbox.events] == ["order.paid"]
            assert [sent.type for sent in outbox.deliver()] == ["order.paid"]
    finally:
        queue["URL"] = previous
    assert "Could not wake" not in caplog.text


def test_attempt_counters_go_past_a_small_integer():
    """Manual retries add attempts without bound; the counters must not overflow (a failing
    write there would fail the whole group of results on PostgreSQL)."""
    Endpoint.objects.create(url="https://customer.example/hooks")
    with webhook_outbox(answer=503) as outbox:
        django_hooks.send_event("order.paid", {"id": 1})
        Delivery.objects.update(attempts=32_767)
        outbox.deliver()
    delivery = Delivery.objects.get()
    assert delivery.attempts == 32_768
    assert delivery.attempt_log.get().number == 32_768
