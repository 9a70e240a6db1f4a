"""Early warnings before the disable (FAILURE_WARNINGS), and the owner told by email
(OWNER_EMAILS): the real engine against a failing receiver, with the failure clock moved back
(never a sleep); emails through Django's locmem backend, sent by the queue's job."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

import django_hooks
from django_hooks import signals
from django_hooks.checks import check_settings
from django_hooks.models import Endpoint, Event
from django_hooks.outbound.delivery import track_failures
from django_hooks.outbound.state import enable_endpoint
from django_hooks.testing import run_worker
from tests.receiver import Reply, hooks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis")]


@pytest.fixture
def warnings_sent():
    received = []

    def record(sender, **kwargs):
        received.append(kwargs)

    signals.endpoint_failing.connect(record, dispatch_uid="test-warnings")
    yield received
    signals.endpoint_failing.disconnect(dispatch_uid="test-warnings")


@pytest.fixture
def owner():
    return User.objects.create_user("owner", email="owner@example.com")


def owned_endpoint(url, owner, **fields):
    endpoint = Endpoint(url=url, **fields)
    endpoint.owner = owner
    endpoint.save()
    return endpoint


def fail_once_more(endpoint, owner=None, *, failing_for):
    """Move the endpoint's failure clock back by ``failing_for``, then fail one more delivery."""
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - failing_for)
    django_hooks.send_event("order.paid", {}, owner=owner)
    run_worker()
    endpoint.refresh_from_db()


def test_each_threshold_is_warned_once_then_the_disable(receiver, warnings_sent, owner):
    endpoint = owned_endpoint(receiver.url(), owner)
    receiver.default = Reply(500)
    with hooks(RETRY_SCHEDULE=[3600]):
        django_hooks.send_event("order.paid", {}, owner=owner)
        run_worker()
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None and warnings_sent == []

        fail_once_more(endpoint, owner, failing_for=dt.timedelta(minutes=59))
        assert warnings_sent == []
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(minutes=61))
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(hours=2))  # no second 1 h warning
        assert [w["threshold"] for w in warnings_sent] == [3600]
        warning = warnings_sent[0]
        assert warning["endpoint"].pk == endpoint.pk
        assert warning["disable_at"] == warning["failing_since"] + dt.timedelta(days=5)
        assert endpoint.failure_warnings_sent == 1

        fail_once_more(endpoint, owner, failing_for=dt.timedelta(hours=25))
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(hours=30))
        assert [w["threshold"] for w in warnings_sent] == [3600, 86400]
        assert endpoint.disabled_at is None

        fail_once_more(endpoint, owner, failing_for=dt.timedelta(days=5, seconds=1))
    assert endpoint.disabled_at is not None
    assert len(warnings_sent) == 2  # the disable is endpoint_disabled's, not another warning


def test_a_worker_down_past_two_thresholds_sends_the_later_one_only(receiver, warnings_sent):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(500)
    with hooks(RETRY_SCHEDULE=[3600]):
        django_hooks.send_event("order.paid", {})
        run_worker()
        fail_once_more(endpoint, failing_for=dt.timedelta(hours=26))
    assert [w["threshold"] for w in warnings_sent] == [86400]
    assert endpoint.failure_warnings_sent == 2


def test_a_success_starts_a_new_spell_with_its_own_warnings(receiver, warnings_sent):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(500)
    with hooks(RETRY_SCHEDULE=[3600]):
        django_hooks.send_event("order.paid", {})
        run_worker()
        fail_once_more(endpoint, failing_for=dt.timedelta(hours=2))
        receiver.default = Reply(200)
        django_hooks.send_event("order.paid", {})
        run_worker()
        endpoint.refresh_from_db()
        assert (endpoint.failing_since, endpoint.failure_warnings_sent) == (None, 0)
        receiver.default = Reply(500)
        django_hooks.send_event("order.paid", {})
        run_worker()
        fail_once_more(endpoint, failing_for=dt.timedelta(hours=2))
    assert [w["threshold"] for w in warnings_sent] == [3600, 3600]


def test_re_enabling_clears_the_warnings(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    Endpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now(), failure_warnings_sent=2, disabled_at=timezone.now()
    )
    enable_endpoint(endpoint)
    endpoint.refresh_from_db()
    assert (endpoint.failing_since, endpoint.failure_warnings_sent) == (None, 0)


def test_several_workers_seeing_the_same_threshold_warn_once(warnings_sent):
    since = timezone.now() - dt.timedelta(hours=2)
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/x")
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=since)

    def worker():
        # Each worker holds its own copy of the row, as claimed before the other's write.
        seen = Endpoint.objects.get(pk=endpoint.pk)
        barrier.wait()
        try:
            with hooks():
                track_failures({seen.pk: seen}, set(), {seen.pk}, now=timezone.now())
        finally:
            connection.close()

    barrier = threading.Barrier(4)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [w["threshold"] for w in warnings_sent] == [3600]
    # And after a restart (fresh objects from the database), still nothing more.
    fresh = Endpoint.objects.get(pk=endpoint.pk)
    with hooks():
        track_failures({fresh.pk: fresh}, set(), {fresh.pk}, now=timezone.now())
    assert len(warnings_sent) == 1


def test_no_warnings_when_the_setting_is_empty(receiver, warnings_sent):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(500)
    with hooks(RETRY_SCHEDULE=[3600], FAILURE_WARNINGS=[]):
        django_hooks.send_event("order.paid", {})
        run_worker()
        fail_once_more(endpoint, failing_for=dt.timedelta(days=4))
    assert warnings_sent == []


def test_endpoint_failing_is_an_operational_event_for_the_owners_endpoints(receiver, owner):
    failing = owned_endpoint(receiver.url("/failing"), owner, event_types=["order.*"])
    watcher = owned_endpoint(receiver.url("/watcher"), owner, event_types=["endpoint.*"])
    owned_endpoint(
        receiver.url("/orders"), User.objects.create_user("other"), event_types=["endpoint.*"]
    )
    receiver.script("/failing", *[Reply(500)] * 5)
    with hooks(RETRY_SCHEDULE=[3600], OPERATIONAL_EVENTS=True):
        django_hooks.send_event("order.paid", {}, owner=owner)
        run_worker()
        fail_once_more(failing, owner, failing_for=dt.timedelta(hours=1, minutes=1))
        run_worker()
    (notice,) = receiver.to("/watcher")
    payload = Webhook(watcher.secret).verify(notice.body, notice.headers)
    assert payload["type"] == "endpoint.failing"
    assert payload["data"]["endpoint_id"] == failing.pk
    assert payload["data"]["failing_for"] == 3600
    assert payload["data"]["failing_since"] and payload["data"]["disable_at"]
    assert receiver.to("/orders") == []
    assert Event.objects.filter(type="endpoint.failing").count() == 1


# -- owner emails -------------------------------------------------------------------------------


def test_the_owner_is_emailed_at_each_warning_and_at_the_disable(receiver, owner):
    endpoint = owned_endpoint(receiver.url("/hook?token=query-secret"), owner)
    receiver.default = Reply(500)
    with hooks(RETRY_SCHEDULE=[3600], OWNER_EMAILS=True):
        django_hooks.send_event("order.paid", {}, owner=owner)
        run_worker()
        assert mail.outbox == []
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(hours=1, minutes=1))
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(hours=1, minutes=2))
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(hours=24, minutes=1))
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(days=5, minutes=1))
        fail_once_more(endpoint, owner, failing_for=dt.timedelta(days=6))  # already disabled
    subjects = [message.subject for message in mail.outbox]
    shown = f"http://127.0.0.1:{receiver.port}/hook"
    assert subjects == [
        f"Webhook endpoint failing for 1 hour: {shown}",
        f"Webhook endpoint failing for 1 day: {shown}",
        f"Webhook endpoint disabled: {shown}",
    ]
    for message in mail.outbox:
        assert message.to == ["owner@example.com"]
        assert "query-secret" not in message.body
        html, kind = message.alternatives[0]
        assert kind == "text/html" and shown in html and "query-secret" not in html
    assert "It will be disabled at" in mail.outbox[0].body
    assert "Every delivery failed for 5 days" in mail.outbox[2].body


def test_no_email_without_the_setting_or_without_an_address(receiver, owner):
    silent = owned_endpoint(receiver.url("/a"), owner)
    nobody = Endpoint.objects.create(url=receiver.url("/b"))  # no owner, so no address
    receiver.default = Reply(410)
    with hooks():
        django_hooks.send_event("order.paid", {}, owner=owner)
        run_worker()
    with hooks(OWNER_EMAILS=True):
        django_hooks.send_event("order.paid", {})
        run_worker()
    silent.refresh_from_db()
    nobody.refresh_from_db()
    assert silent.disabled_at and nobody.disabled_at
    assert mail.outbox == []


def find_address(endpoint):
    return ["ops@example.com", f"endpoint-{endpoint.pk}@example.com"]


def test_the_address_can_come_from_a_callable(receiver):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.default = Reply(410)
    with hooks(OWNER_EMAILS=True, OWNER_EMAIL_ADDRESS=f"{__name__}.find_address"):
        django_hooks.send_event("order.paid", {})
        run_worker()
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", f"endpoint-{endpoint.pk}@example.com"]


def test_the_templates_can_be_overridden(receiver, owner, tmp_path, settings):
    folder = tmp_path / "django_hooks" / "email"
    folder.mkdir(parents=True)
    (folder / "endpoint_disabled_subject.txt").write_text("Acme: {{ endpoint_url }} is off")
    (folder / "endpoint_disabled.txt").write_text(
        "Dear {{ endpoint.owner.username }}: {{ reason }}"
    )
    (folder / "endpoint_disabled.html").write_text("  \n")  # empty: text alone
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    owned_endpoint(receiver.url(), owner)
    receiver.default = Reply(410)
    with hooks(OWNER_EMAILS=True), override_settings(TEMPLATES=templates):
        django_hooks.send_event("order.paid", {}, owner=owner)
        run_worker()
    (message,) = mail.outbox
    assert message.subject == f"Acme: http://127.0.0.1:{receiver.port}/hook is off"
    assert message.body == "Dear owner: The endpoint answered 410 Gone."
    assert message.alternatives == []


def test_checks():
    def ids(**overrides):
        with hooks(**overrides):
            return {message.id for message in check_settings()}

    assert "django_hooks.E015" in ids(FAILURE_WARNINGS=[3600, 5 * 86400])
    assert "django_hooks.E015" in ids(FAILURE_WARNINGS=["1h"])
    assert "django_hooks.E015" not in ids(FAILURE_WARNINGS=[])
    assert "django_hooks.E016" in ids(OWNER_EMAIL_ADDRESS="no.such.function")
    assert "django_hooks.E016" not in ids(OWNER_EMAIL_ADDRESS=f"{__name__}.find_address")
    assert json.dumps(sorted(ids())) == "[]"  # (W001 is the security-tagged check's)


def test_a_results_write_rolled_back_and_tried_again_still_warns(warnings_sent):
    """with_db_retries runs the whole write again after a dropped connection: the warning's
    claim was rolled back with it, so the second try must claim and send it."""
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/x")
    Endpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - dt.timedelta(hours=2)
    )
    endpoint.refresh_from_db()
    with hooks():
        with pytest.raises(RuntimeError), transaction.atomic():
            track_failures({endpoint.pk: endpoint}, set(), {endpoint.pk}, now=timezone.now())
            raise RuntimeError("connection dropped")
        assert warnings_sent == []
        with transaction.atomic():
            track_failures({endpoint.pk: endpoint}, set(), {endpoint.pk}, now=timezone.now())
    assert [w["threshold"] for w in warnings_sent] == [3600]
    assert Endpoint.objects.get(pk=endpoint.pk).failure_warnings_sent == 1
