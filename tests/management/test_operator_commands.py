"""The operator's commands: hooks_send_test, hooks_retry, hooks_stats and hooks_prune, with time
travel (timestamps moved back in the database), never sleeps."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

import django_hooks
from django_hooks.event_types import unregister_event_type
from django_hooks.internal.retention import prune
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, InboundWebhook
from django_hooks.outbound.operations import (
    Latency,
    attempt_latency,
    hourly_delivery_counts,
    nearest_rank,
)
from django_hooks.testing import drain
from tests.receiver import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def aged(delivery_or_qs, **ago):
    """Move deliveries (and their events) back in time."""
    when = timezone.now() - dt.timedelta(**ago)
    queryset = (
        delivery_or_qs
        if hasattr(delivery_or_qs, "update")
        else Delivery.objects.filter(pk=delivery_or_qs.pk)
    )
    Event.objects.filter(deliveries__in=queryset).update(created_at=when)
    queryset.update(created_at=when)
    return when


# -- hooks_send_test ---------------------------------------------------------------------------


def test_hooks_send_test_sends_a_signed_test_event(receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url(), event_types=["order.*"])
    out = run("hooks_send_test", str(endpoint.pk))
    assert f"(webhook.test) to {endpoint.url}" in out
    drain()
    (request,) = receiver.requests
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["type"] == "webhook.test"
    with pytest.raises(CommandError, match="declared event type with an example"):
        run("hooks_send_test", str(endpoint.pk), "--type", "ping.check")
    django_hooks.register_event_type("ping.check", "A ping.", example={"ping": True})
    try:
        run("hooks_send_test", str(endpoint.pk), "--type", "ping.check")
    finally:
        unregister_event_type("ping.check")
    drain()
    assert Event.objects.get(type="ping.check").data == {"ping": True}


def test_hooks_send_test_names_what_is_wrong():
    with pytest.raises(CommandError, match="no endpoint with id 999"):
        run("hooks_send_test", "999")
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/", is_active=False)
    with pytest.raises(CommandError, match="inactive; enable it"):
        run("hooks_send_test", str(endpoint.pk))
    Endpoint.objects.update(is_active=True)
    with pytest.raises(CommandError, match="not a valid event type"):
        run("hooks_send_test", str(endpoint.pk), "--type", "no spaces")
    assert not Event.objects.exists()


# -- hooks_retry -------------------------------------------------------------------------------


def failed_deliveries(receiver, path, count):
    endpoint = Endpoint.objects.create(url=receiver.url(path))
    return endpoint, [
        Delivery.objects.create(
            event=Event.objects.create(type="order.paid", data={"n": n}),
            endpoint=endpoint,
            status="failed",
            attempts=4,
            completed_at=timezone.now(),
        )
        for n in range(count)
    ]


def test_hooks_retry_counts_first_and_dry_run_sends_nothing(receiver, redis):
    failed_deliveries(receiver, "/a", 2)
    out = run("hooks_retry", "--dry-run")
    assert "2 failed deliveries match." in out and "Queued" not in out
    assert set(Delivery.objects.values_list("status", flat=True)) == {"failed"}
    out = run("hooks_retry")
    assert "2 failed deliveries match." in out and "Queued 2 deliveries" in out
    drain()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert len(receiver.requests) == 2


def test_hooks_retry_filters_by_endpoint_status_and_time(receiver, redis):
    a, (old, recent) = failed_deliveries(receiver, "/a", 2)
    b, (other,) = failed_deliveries(receiver, "/b", 1)
    aged(old, days=3)
    aged(recent, hours=2)
    Delivery.objects.filter(pk=other.pk).update(status="cancelled")

    assert "1 failed deliveries match." in run(
        "hooks_retry", "--endpoint", str(a.pk), "--since", "1d", "--dry-run"
    )
    assert "0 failed deliveries match." in run("hooks_retry", "--endpoint", str(b.pk), "--dry-run")
    assert "1 cancelled deliveries match." in run(
        "hooks_retry", "--status", "cancelled", "--dry-run"
    )
    until = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert "1 failed deliveries match." in run("hooks_retry", "--until", until, "--dry-run")
    out = run("hooks_retry", "--endpoint", str(a.pk), "--since", "1d")
    assert "Queued 1 deliveries" in out
    drain()
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "failed", recent.pk: "succeeded", other.pk: "cancelled"}


def test_hooks_retry_names_what_is_wrong():
    with pytest.raises(CommandError, match="No endpoint with id 41, 42"):
        run("hooks_retry", "--endpoint", "41", "--endpoint", "42")
    with pytest.raises(CommandError, match="later than --since"):
        run("hooks_retry", "--since", "1h", "--until", "2h")
    with pytest.raises(CommandError, match="neither an ISO 8601 date-time"):
        run("hooks_retry", "--since", "last tuesday")


# -- hooks_stats -------------------------------------------------------------------------------


def attempts_with_durations(endpoint, durations, **ago):
    event = Event.objects.create(type="order.paid", data={})
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, status="succeeded")
    created = timezone.now() - dt.timedelta(**ago) if ago else timezone.now()
    DeliveryAttempt.objects.bulk_create(
        [
            DeliveryAttempt(
                delivery=delivery,
                number=n + 1,
                url=endpoint.url,
                status_code=200,
                duration_ms=d,
                created_at=created,
            )
            for n, d in enumerate(durations)
        ]
    )
    return delivery


def test_attempt_latency_percentiles_are_nearest_rank():
    assert [nearest_rank(0.5, n) for n in (1, 2, 3, 4, 100)] == [0, 0, 1, 1, 49]
    assert [nearest_rank(0.95, n) for n in (1, 2, 20, 100)] == [0, 1, 18, 94]
    busy = Endpoint.objects.create(url="http://127.0.0.1:9/a")
    idle = Endpoint.objects.create(url="http://127.0.0.1:9/b")
    attempts_with_durations(busy, list(range(1, 101)))  # 1..100 ms
    attempts_with_durations(busy, [9999], days=2)  # outside the window
    latency = attempt_latency([busy.pk, idle.pk], since=timezone.now() - dt.timedelta(hours=24))
    assert latency == {busy.pk: Latency(100, 50, 95), idle.pk: Latency(0, None, None)}


def test_hooks_stats_prints_counts_rates_and_latency(receiver, redis):
    up = Endpoint.objects.create(url=receiver.url("/up"))
    down = Endpoint.objects.create(url=receiver.url("/down"))
    receiver.script("/down", *[Reply(500)] * 8)
    django_hooks.send_event("order.paid", {})
    django_hooks.send_event("order.paid", {})
    drain()
    old = Delivery.objects.filter(endpoint=up).first()
    aged(Delivery.objects.filter(pk=old.pk), days=3)

    out = run("hooks_stats")
    lines = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert lines[str(up.pk)][1:6] == [up.url, "1", "0", "0", "100.0%"]
    assert lines[str(down.pk)][1:6] == [down.url, "0", "2", "0", "0.0%"]
    assert lines[str(down.pk)][6].isdigit() and lines[str(down.pk)][7].isdigit()

    out = run("hooks_stats", "--since", "7d", "--endpoint", str(up.pk))
    (row,) = [line.split() for line in out.splitlines()[3:]]
    assert row[:6] == [str(up.pk), up.url, "2", "0", "0", "100.0%"]
    with pytest.raises(CommandError, match="No endpoint with id 999"):
        run("hooks_stats", "--endpoint", "999")


def test_hourly_counts_have_one_entry_per_hour_in_one_query(django_assert_num_queries):
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/")
    event = Event.objects.create(type="order.paid", data={})
    now = timezone.now()
    for hours_ago, status in [
        (0, "succeeded"),
        (0, "failed"),
        (0, "pending"),
        (5, "failed"),
        (50, "succeeded"),
    ]:
        Delivery.objects.create(
            event=event,
            endpoint=endpoint,
            status=status,
            created_at=now - dt.timedelta(hours=hours_ago),
        )
    with django_assert_num_queries(1):
        series = hourly_delivery_counts(endpoint, hours=48, now=now)
    assert len(series) == 48
    assert [(h.succeeded, h.failed) for h in series[-1:]] == [(1, 1)]
    assert (series[-6].succeeded, series[-6].failed) == (0, 1)
    assert sum(h.succeeded for h in series) == 1  # the one of 50 hours ago is outside
    assert series[-1].hour == now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


# -- hooks_prune -------------------------------------------------------------------------------


def test_hooks_prune_older_than_deletes_finished_events_deliveries_attempts_and_calls(
    receiver, redis
):
    # One attempt at a time: the first delivery gets the 500, then succeeds on its retry.
    Endpoint.objects.create(url=receiver.url(), max_concurrency=1)
    receiver.script("/hook", Reply(500))
    for n in range(5):
        django_hooks.send_event("order.paid", {"n": n})
    drain()
    keep_recent = Delivery.objects.order_by("pk")[0]
    old = Delivery.objects.exclude(pk=keep_recent.pk)
    aged(old, days=10)
    pending = Delivery.objects.order_by("pk")[1]
    Delivery.objects.filter(pk=pending.pk).update(status="pending", next_attempt_at=timezone.now())
    InboundWebhook.objects.create(
        source="s",
        provider="standard",
        webhook_id="old",
        body=b"",
        status="processed",
        received_at=timezone.now() - dt.timedelta(days=10),
    )
    InboundWebhook.objects.create(
        source="s",
        provider="standard",
        webhook_id="waiting",
        body=b"",
        received_at=timezone.now() - dt.timedelta(days=10),
    )
    InboundWebhook.objects.create(
        source="s", provider="standard", webhook_id="new", body=b"", status="processed"
    )
    attempts_before = DeliveryAttempt.objects.count()

    out = run("hooks_prune", "--older-than", "7d", "--batch-size", "2")
    assert "Deleted 1 inbound calls and 3 events." in out
    assert "Deleted 3 deliveries and 3 attempts with those events." in out
    assert set(Delivery.objects.values_list("pk", flat=True)) == {keep_recent.pk, pending.pk}
    assert DeliveryAttempt.objects.count() == attempts_before - 3
    assert set(InboundWebhook.objects.values_list("webhook_id", flat=True)) == {"waiting", "new"}
    # Nothing left that old: a second run deletes nothing.
    assert "Deleted 0 inbound calls and 0 events." in run("hooks_prune", "--older-than", "7d")


def test_prune_uses_the_retention_settings_without_older_than(settings):
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/")
    event = Event.objects.create(
        type="order.paid", data={}, created_at=timezone.now() - dt.timedelta(days=40)
    )
    Delivery.objects.create(event=event, endpoint=endpoint, status="succeeded")
    settings.DJANGO_HOOKS = {**settings.DJANGO_HOOKS, "EVENT_RETENTION": 60 * 86400}
    assert prune()["events"] == 0
    settings.DJANGO_HOOKS = {**settings.DJANGO_HOOKS, "EVENT_RETENTION": 30 * 86400}
    assert prune() == {"inbound": 0, "events": 1, "deliveries": 1, "attempts": 0}
    settings.DJANGO_HOOKS = {**settings.DJANGO_HOOKS, "EVENT_RETENTION": None}
    Event.objects.create(
        type="order.paid", data={}, created_at=timezone.now() - dt.timedelta(days=4000)
    )
    assert prune()["events"] == 0


def test_prune_keeps_an_event_whose_delivery_is_retried_while_it_runs(monkeypatch):
    """A retry landing between prune's candidate query and its delete keeps the event."""
    from django_hooks.internal import retention
    from django_hooks.outbound.state import retry_deliveries

    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/")
    event = Event.objects.create(
        type="order.paid", data={}, created_at=timezone.now() - dt.timedelta(days=100)
    )
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, status="failed")
    real_atomic = retention.transaction.atomic

    def retry_first(*args, **kwargs):
        monkeypatch.setattr(retention.transaction, "atomic", real_atomic)
        retry_deliveries(Delivery.objects.filter(pk=delivery.pk))  # an operator, meanwhile
        return real_atomic(*args, **kwargs)

    monkeypatch.setattr(retention.transaction, "atomic", retry_first)
    assert prune(older_than=dt.timedelta(days=1))["events"] == 0
    assert Delivery.objects.get().status == "pending" and Event.objects.exists()


def test_hooks_prune_names_what_is_wrong():
    with pytest.raises(CommandError, match="not a duration"):
        run("hooks_prune", "--older-than", "a while")
    with pytest.raises(CommandError, match="at least 1"):
        run("hooks_prune", "--batch-size", "0")


def test_hooks_prune_deletes_expired_idempotency_keys():
    from django_hooks.models import IdempotencyKey

    old = IdempotencyKey.objects.create(key="old", fingerprint="f")
    IdempotencyKey.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=25)
    )
    IdempotencyKey.objects.create(key="new", fingerprint="f")
    out = io.StringIO()
    call_command("hooks_prune", stdout=out)
    assert "Deleted 1 expired REST API idempotency keys." in out.getvalue()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
