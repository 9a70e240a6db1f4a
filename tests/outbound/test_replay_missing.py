"""Replay missing: a re-enabled endpoint gets the events it would have received while disabled,
from the state function, the admin, the REST API and the command; in one INSERT ... SELECT, and
never twice. Delivered by the real engine to a receiver on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

import django_hooks
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.outbound.operations import send_test_event
from django_hooks.outbound.state import disable_endpoint, enable_endpoint, replay_missing
from django_hooks.testing import drain
from tests.receiver import hooks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]


@pytest.fixture
def owner():
    return User.objects.create_user("acme", email="ops@acme.example")


def owned(url, owner, **fields):
    endpoint = Endpoint(url=url, **fields)
    endpoint.owner = owner
    endpoint.save()
    return endpoint


def sent_types(receiver, path):
    return sorted(json.loads(r.body)["type"] for r in receiver.to(path))


def a_disabled_spell(receiver, owner):
    """An endpoint disabled while its owner sent a mix of events; returns it and the ids of
    the events it missed."""
    other = User.objects.create_user(f"other-of-{owner.username}")
    endpoint = owned(receiver.url("/a"), owner, event_types=["order.*"])
    watcher = owned(receiver.url("/all"), owner)  # receives everything, all along
    before = django_hooks.send_event("order.created", {}, owner=owner)  # pending when disabled
    disable_endpoint(endpoint, "The endpoint answered 410 Gone.", by="system")
    missed = [
        django_hooks.send_event("order.paid", {"n": 1}, owner=owner).pk,
        django_hooks.send_event("order.shipped", {"n": 2}, owner=owner).pk,
    ]
    django_hooks.send_event("invoice.paid", {}, owner=owner)  # not subscribed
    django_hooks.send_event("order.paid", {}, owner=other)  # another owner's
    django_hooks.send_event("order.paid", {})  # unowned
    send_test_event(watcher)  # a test send is nobody's missed event
    endpoint.refresh_from_db()
    return endpoint, before, missed


def test_replay_enables_and_sends_exactly_what_was_missed(receiver, owner):
    with hooks():
        endpoint, before, missed = a_disabled_spell(receiver, owner)
        done = replay_missing(endpoint)
        assert done.enabled and done.count == 2
        assert done.since == Endpoint.objects.get(pk=endpoint.pk).last_disabled_at
        drain()
    endpoint.refresh_from_db()
    assert endpoint.is_receiving
    # The pending delivery from before the disable resumed; the two missed ones were added.
    assert sent_types(receiver, "/a") == ["order.created", "order.paid", "order.shipped"]
    events = Delivery.objects.filter(endpoint=endpoint).values_list("event_id", flat=True)
    assert sorted(events) == sorted([before.pk, *missed])
    assert set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {
        "succeeded"
    }


def test_replaying_again_adds_nothing(receiver, owner):
    with hooks():
        endpoint, _, _ = a_disabled_spell(receiver, owner)
        assert replay_missing(endpoint).count == 2
        assert replay_missing(endpoint).count == 0  # pending: not added twice
        drain()
        assert replay_missing(endpoint).count == 0  # delivered: not added twice
    assert Delivery.objects.filter(endpoint=endpoint).count() == 3


def test_after_a_plain_enable_the_last_spell_is_replayed_and_no_later_event(receiver, owner):
    with hooks():
        endpoint, _, missed = a_disabled_spell(receiver, owner)
        enable_endpoint(endpoint)
        after = django_hooks.send_event("order.paid", {"after": True}, owner=owner)
        # Subscribed to more after the re-enable: events of the new type from before then were
        # never missed while disabled... unless sent during the spell.
        endpoint.refresh_from_db()
        endpoint.event_types = ["order.*", "invoice.*"]
        endpoint.save()
        django_hooks.send_event("invoice.sent", {}, owner=owner)
        done = replay_missing(endpoint)
        assert not done.enabled
        assert (done.since, done.until) == (endpoint.last_disabled_at, endpoint.enabled_at)
        drain()
    types = sent_types(receiver, "/a")
    # The spell's order events and its invoice.paid (subscribed now); after it, what was sent live.
    assert types == [
        "invoice.paid",
        "invoice.sent",
        "order.created",
        "order.paid",
        "order.paid",
        "order.shipped",
    ]
    assert Delivery.objects.filter(endpoint=endpoint, event=after).count() == 1
    assert set(missed) <= set(
        Delivery.objects.filter(endpoint=endpoint).values_list("event", flat=True)
    )


def test_a_window_can_be_given_and_nothing_before_the_endpoint_existed_is_sent(receiver, owner):
    with hooks():
        django_hooks.send_event("order.paid", {"old": True}, owner=owner)
        endpoint = owned(receiver.url("/new"), owner)
        Endpoint.objects.filter(pk=endpoint.pk).update(created_at=timezone.now())
        with pytest.raises(ValueError, match="has not been disabled"):
            replay_missing(endpoint)
        done = replay_missing(endpoint, since=timezone.now() - dt.timedelta(days=1))
    assert done.count == 0


def test_one_insert_whatever_the_number_of_events(receiver, owner):
    def replay(count):
        endpoint = owned(receiver.url(f"/bulk{count}"), owner, event_types=[f"bulk{count}.*"])
        disable_endpoint(endpoint, by="system")
        for n in range(count):
            django_hooks.send_event(f"bulk{count}.made", {"n": n}, owner=owner)
        with CaptureQueriesContext(connection) as queries:
            done = replay_missing(endpoint)
        assert done.count == count
        inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT")]
        assert len(inserts) == 1 and "SELECT" in inserts[0]
        return len(queries)

    with hooks():
        assert replay(3) == replay(60)


# -- the three ways in -------------------------------------------------------------------------


def test_the_api_action(receiver, owner):
    client = APIClient()
    client.force_login(owner)
    with hooks():
        endpoint, _, _ = a_disabled_spell(receiver, owner)
        url = f"/api/hooks/endpoints/{endpoint.pk}/replay-missing/"
        response = client.post(url, {}, format="json")
        assert response.status_code == 202, response.content
        assert response.json()["replayed"] == 2 and response.json()["enabled"] is True
        assert client.post(url, {}, format="json").json()["replayed"] == 0

        never = owned(receiver.url("/never"), owner)
        refused = client.post(f"/api/hooks/endpoints/{never.pk}/replay-missing/", {}, format="json")
        assert refused.status_code == 400 and "has not been disabled" in refused.json()["since"][0]

        by_operator = owned(receiver.url("/operator"), owner)
        disable_endpoint(by_operator, "Abuse.")
        refused = client.post(
            f"/api/hooks/endpoints/{by_operator.pk}/replay-missing/", {}, format="json"
        )
        assert refused.status_code == 403 and "operator" in refused.json()["detail"]
        by_operator.refresh_from_db()
        assert by_operator.disabled_at is not None

        stranger = APIClient()
        stranger.force_login(User.objects.create_user("stranger"))
        assert stranger.post(url, {}, format="json").status_code == 404


@pytest.fixture
def admin_client_():
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_the_admin_buttons_and_action(receiver, owner, admin_client_):
    with hooks():
        endpoint, _, _ = a_disabled_spell(receiver, owner)
        page = admin_client_.get(
            f"/admin/django_hooks/endpoint/{endpoint.pk}/change/"
        ).content.decode()
        assert 'value="Enable and replay missing"' in page
        response = admin_client_.post(f"/admin/django_hooks/endpoint/{endpoint.pk}/replay-missing/")
        assert response.status_code == 302
        followed = admin_client_.get(response["Location"]).content.decode()
        assert "Enabled; 2 events missed from" in followed
        assert 'value="Replay missing"' in followed  # offered again for the last spell
        assert Delivery.objects.filter(endpoint=endpoint).count() == 3

        second, _, _ = a_disabled_spell(receiver, User.objects.create_user("acme2"))
        response = admin_client_.post(
            "/admin/django_hooks/endpoint/",
            {"action": "enable_and_replay", "_selected_action": [second.pk, endpoint.pk]},
        )
        assert response.status_code == 302
        assert Delivery.objects.filter(endpoint=second).count() == 3
        assert Endpoint.objects.get(pk=second.pk).is_receiving


def test_the_command(receiver, owner):
    with hooks():
        endpoint, _, _ = a_disabled_spell(receiver, owner)
        out = io.StringIO()
        call_command("hooks_replay_missing", str(endpoint.pk), stdout=out)
        assert out.getvalue().splitlines()[0] == f"Enabled endpoint {endpoint.pk}."
        assert "Queued 2 missed events" in out.getvalue()
        out = io.StringIO()
        call_command("hooks_replay_missing", str(endpoint.pk), "--since", "30d", stdout=out)
        assert "Queued 0 missed events" in out.getvalue()
        with pytest.raises(CommandError, match="No endpoint with id 999999"):
            call_command("hooks_replay_missing", "999999")
        never = owned(receiver.url("/never"), owner)
        with pytest.raises(CommandError, match="has not been disabled"):
            call_command("hooks_replay_missing", str(never.pk))
    assert Event.objects.filter(is_test=True).count() == 1
