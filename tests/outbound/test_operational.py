"""Auto-disable's clock (time travel: timestamps moved back, never sleeps) and the operational
webhooks endpoint.disabled and message.attempt.exhausted (OPERATIONAL_EVENTS)."""

import datetime as dt
import json

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

import django_hooks
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.outbound.state import enable_endpoint
from django_hooks.testing import drain, run_worker
from tests.receiver import Reply, hooks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]


def travel_failing_since(endpoint, **ago):
    Endpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - dt.timedelta(**ago)
    )


# -- auto-disable ------------------------------------------------------------------------------


def test_the_clock_starts_at_the_first_failure_and_later_failures_do_not_move_it(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(500)
    with hooks(RETRY_SCHEDULE=[3600]):
        django_hooks.send_event("order.paid", {})
        run_worker()
        endpoint.refresh_from_db()
        first = endpoint.failing_since
        assert first is not None
        travel_failing_since(endpoint, days=4)
        django_hooks.send_event("order.paid", {})
        run_worker()
    endpoint.refresh_from_db()
    # Four days of failures: still within DISABLE_AFTER (5 days); the clock was not restarted.
    assert endpoint.disabled_at is None
    assert timezone.now() - endpoint.failing_since > dt.timedelta(days=3, hours=23)


def test_re_enabling_resets_the_clock(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(500)
    with hooks(RETRY_SCHEDULE=[3600]):
        django_hooks.send_event("order.paid", {})
        run_worker()
        travel_failing_since(endpoint, days=6)
        django_hooks.send_event("order.paid", {})
        run_worker()
        endpoint.refresh_from_db()
        assert endpoint.disabled_at is not None and "failed for 5 days" in endpoint.disabled_reason

        enable_endpoint(endpoint)
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None and endpoint.disabled_at is None
        # It still fails, but the new clock starts now: not disabled again at once.
        Delivery.objects.update(next_attempt_at=timezone.now())
        enable_endpoint(endpoint)
        run_worker()
        endpoint.refresh_from_db()
        assert endpoint.disabled_at is None
        assert timezone.now() - endpoint.failing_since < dt.timedelta(minutes=1)
        # Five more days of failures and it is disabled again.
        travel_failing_since(endpoint, days=5, seconds=1)
        django_hooks.send_event("order.paid", {})
        run_worker()
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None


def test_a_shorter_disable_after_is_honoured(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(502)
    with hooks(RETRY_SCHEDULE=[3600], DISABLE_AFTER=3600):
        django_hooks.send_event("order.paid", {})
        run_worker()
        travel_failing_since(endpoint, minutes=59)
        django_hooks.send_event("order.paid", {})
        run_worker()
        endpoint.refresh_from_db()
        assert endpoint.disabled_at is None
        travel_failing_since(endpoint, minutes=61)
        django_hooks.send_event("order.paid", {})
        run_worker()
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None


# -- operational webhooks ----------------------------------------------------------------------


def test_endpoint_disabled_goes_to_the_owners_subscribed_endpoints_only(receiver):
    from tests.testapp.models import Organization

    acme, other = Organization.objects.create(name="acme"), Organization.objects.create(name="o")

    def endpoint(path, owner, types):
        created = Endpoint(url=receiver.url(path), event_types=types)
        created.owner = owner
        created.save()
        return created

    gone = endpoint("/gone", acme, ["order.*"])
    watcher = endpoint("/watcher", acme, ["endpoint.disabled"])
    endpoint("/orders-only", acme, ["order.*"])
    endpoint("/other-owner", other, ["endpoint.disabled"])
    receiver.script("/gone", Reply(410))
    with hooks(OPERATIONAL_EVENTS=True):
        django_hooks.send_event("order.paid", {"id": 1}, owner=acme)
        drain()
    gone.refresh_from_db()
    assert gone.disabled_at is not None
    (notice,) = receiver.to("/watcher")
    payload = Webhook(watcher.secret).verify(notice.body, notice.headers)
    assert payload["type"] == "endpoint.disabled"
    assert payload["data"]["endpoint_id"] == gone.pk and "410" in payload["data"]["reason"]
    assert payload["data"]["url"] == gone.url and payload["data"]["disabled_at"]
    assert receiver.to("/other-owner") == []
    assert [json.loads(r.body)["type"] for r in receiver.to("/orders-only")] == ["order.paid"]
    assert len(receiver.to("/gone")) == 1  # the disabled endpoint is not told


def test_attempt_exhausted_is_sent_but_never_about_an_operational_event(receiver):
    Endpoint.objects.create(url=receiver.url("/down"), event_types=["order.*"])
    # Subscribed to every event, and failing too: its own exhausted notice must not loop.
    Endpoint.objects.create(url=receiver.url("/flaky-watcher"))
    watcher = Endpoint.objects.create(url=receiver.url("/watcher"), event_types=["message.*"])
    receiver.script("/down", *[Reply(500)] * 4)
    receiver.script("/flaky-watcher", *[Reply(503)] * 12)
    with hooks(OPERATIONAL_EVENTS=True):
        event = django_hooks.send_event("order.paid", {"id": 7})
        drain()
    notices = [Webhook(watcher.secret).verify(r.body, r.headers) for r in receiver.to("/watcher")]
    exhausted = [n for n in notices if n["type"] == "message.attempt.exhausted"]
    # /down and /flaky-watcher exhausted order.paid: two notices; /flaky-watcher also failed
    # the first notice, about which nothing more is sent.
    assert len(exhausted) == 2
    about = {n["data"]["endpoint_id"] for n in exhausted}
    assert about == set(Endpoint.objects.exclude(pk=watcher.pk).values_list("pk", flat=True))
    for notice in exhausted:
        assert (
            notice["data"]["event_id"] == event.pk and notice["data"]["event_type"] == "order.paid"
        )
        assert notice["data"]["attempts"] == 4
        assert notice["data"]["last_attempt"]["status_code"] in (500, 503)
    assert Event.objects.filter(type="message.attempt.exhausted").count() == 2
    failed_notices = Delivery.objects.filter(
        event__type="message.attempt.exhausted", status="failed"
    )
    assert failed_notices.count() == 2  # the flaky watcher failed both notices


def test_operational_events_are_off_by_default(receiver):
    Endpoint.objects.create(url=receiver.url("/down"))
    receiver.default = Reply(410)
    django_hooks.send_event("order.paid", {})
    Endpoint.objects.create(url=receiver.url("/watcher"))
    receiver.script("/watcher", Reply(200))
    drain()
    assert (
        Event.objects.filter(type__in=["endpoint.disabled", "message.attempt.exhausted"]).count()
        == 0
    )


def test_an_endpoint_whose_owner_is_gone_tells_nobody_else(receiver):
    from tests.testapp.models import Organization

    org = Organization.objects.create(name="gone soon")
    orphan = Endpoint(url=receiver.url("/orphan"))
    orphan.owner = org
    orphan.save()
    Endpoint.objects.create(url=receiver.url("/unowned-watcher"), event_types=["endpoint.*"])
    receiver.script("/orphan", Reply(410))
    with hooks(OPERATIONAL_EVENTS=True):
        django_hooks.send_event("order.paid", {}, owner=org)
        org.delete()
        drain()
    orphan.refresh_from_db()
    assert orphan.disabled_at is not None
    assert receiver.to("/unowned-watcher") == []
    assert not Event.objects.filter(type="endpoint.disabled").exists()
