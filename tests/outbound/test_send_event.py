import datetime as dt
import decimal

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import django_hooks
from django_hooks.exceptions import InvalidEventType, PayloadError
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.outbound import dispatch
from tests.testapp.models import Organization

pytestmark = pytest.mark.django_db


def endpoint(event_types=(), owner=None, **fields):
    ep = Endpoint(url="http://127.0.0.1:9/hook", event_types=list(event_types), **fields)
    ep.owner = owner
    ep.save()
    return ep


def delivered_to(event):
    return set(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True))


def test_one_delivery_per_subscribed_active_endpoint():
    everything = endpoint()
    star = endpoint(["*"])
    exact = endpoint(["order.paid"])
    wildcard = endpoint(["order.*"])
    deep = endpoint(["order.item.*"])
    other = endpoint(["invoice.paid", "order.refunded"])
    endpoint(["order.paid"], is_active=False)
    disabled = endpoint(["order.paid"])
    Endpoint.objects.filter(pk=disabled.pk).update(disabled_at="2026-01-01T00:00:00Z")

    event = django_hooks.send_event("order.paid", {"id": 42, "total": decimal.Decimal("9.90")})
    assert event.id.startswith("msg_")
    assert delivered_to(event) == {everything.pk, star.pk, exact.pk, wildcard.pk}
    assert Event.objects.get(pk=event.pk).data == {"id": 42, "total": "9.90"}

    nested = django_hooks.send_event("order.item.added", {})
    assert delivered_to(nested) == {everything.pk, star.pk, wildcard.pk, deep.pk}
    assert delivered_to(django_hooks.send_event("order.refunded", {})) >= {other.pk}
    # "order.*" is not "orders.*" and LIKE wildcards in types are literal.
    assert wildcard.pk not in delivered_to(django_hooks.send_event("orders.paid", {}))


def test_owner_scopes_the_endpoints():
    acme, globex = (
        Organization.objects.create(name="acme"),
        Organization.objects.create(name="globex"),
    )
    mine, theirs, site = endpoint(owner=acme), endpoint(owner=globex), endpoint()
    assert delivered_to(django_hooks.send_event("a.b", {}, owner=acme)) == {mine.pk}
    assert delivered_to(django_hooks.send_event("a.b", {}, owner=globex)) == {theirs.pk}
    assert delivered_to(django_hooks.send_event("a.b", {})) == {site.pk}


def test_rolled_back_transaction_records_and_enqueues_nothing(
    redis, django_capture_on_commit_callbacks
):
    endpoint()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            django_hooks.send_event("order.paid", {"id": 1})
            raise RuntimeError("business change failed")
    assert callbacks == []
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert redis.llen("rq:queue:default") == 0


def test_commit_enqueues_one_job_per_batch(redis, django_capture_on_commit_callbacks):
    for _ in range(3):
        endpoint()
    with django_capture_on_commit_callbacks(execute=True):
        django_hooks.send_event("order.paid", {"id": 1})
    assert redis.llen("rq:queue:default") == 1


def test_idempotency_key_returns_the_first_event():
    endpoint()
    acme = Organization.objects.create(name="acme")
    first = django_hooks.send_event("order.paid", {"id": 1}, idempotency_key="order-1-paid")
    again = django_hooks.send_event("order.paid", {"id": 999}, idempotency_key="order-1-paid")
    assert again.pk == first.pk and again.data == {"id": 1}
    other_owner = django_hooks.send_event(
        "order.paid", {}, owner=acme, idempotency_key="order-1-paid"
    )
    assert other_owner.pk != first.pk
    assert Event.objects.count() == 2 and Delivery.objects.count() == 1


def test_query_count_is_constant_whatever_the_fan_out():
    def queries_for_one_event():
        with CaptureQueriesContext(connection) as captured:
            django_hooks.send_event("order.paid", {"id": 1})
        return len(captured)

    endpoint()
    few = queries_for_one_event()
    for _ in range(50):
        endpoint()
    assert queries_for_one_event() == few <= 3


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("", {}), InvalidEventType, "not a valid event type"),
        (("order paid", {}), InvalidEventType, "not a valid event type"),
        ((None, {}), InvalidEventType, "not a valid event type"),
        (("order.paid", {"x": object()}), PayloadError, "not JSON-serializable"),
        (("order.paid", {"x": "a" * 300_000}), PayloadError, "MAX_PAYLOAD_BYTES"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(args, error, message):
    endpoint()
    with pytest.raises(error, match=message):
        django_hooks.send_event(*args)
    assert not Event.objects.exists() and not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_commits_wake_one_drain_instead_of_enqueueing_a_job_each(redis):
    """A drain takes every due delivery from the database, so commits only need one waiting
    drain job between them: 40 events in one transaction, then four more transactions, make one
    job; once a worker starts that drain, the next commit wakes another."""
    from django_hooks.outbound.wakeups import get_queue, wake_marker

    for n in range(5):
        Endpoint.objects.create(url=f"http://127.0.0.1:9/{n}")
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"]}):
        with transaction.atomic():
            for n in range(40):  # 200 deliveries
                django_hooks.send_event("order.paid", {"n": n})
        assert get_queue().count == 1
        with transaction.atomic():
            django_hooks.send_event("order.paid", {"n": "rolled back"})
            transaction.set_rollback(True)
        for n in range(4):
            with transaction.atomic():
                django_hooks.send_event("order.paid", {"n": f"later {n}"})
        assert get_queue().count == 1
        (job,) = get_queue().get_jobs()
        assert job.func_name == "django_hooks.outbound.tasks.drain" and job.args == ()
        # What a starting drain does first: a commit from now on needs a new job.
        redis.delete(wake_marker(get_queue()))
        django_hooks.send_event("order.paid", {"n": "while draining"})
        assert get_queue().count == 2
    assert Delivery.objects.count() == 5 * 45


@pytest.mark.django_db(transaction=True)
def test_a_marker_left_by_a_worker_that_died_before_clearing_it_does_not_block_wake_ups(redis):
    """A worker took the drain job and was killed before the job cleared the marker: the marker
    says a drain waits, yet the queue is empty. The next commit (or sweep) enqueues one anyway."""
    from django_hooks.outbound.sweep import sweep
    from django_hooks.outbound.wakeups import get_queue, wake_marker

    Endpoint.objects.create(url="http://127.0.0.1:9/hook")
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"]}):
        queue = get_queue()
        django_hooks.send_event("order.paid", {"n": 1})
        assert queue.count == 1
        queue.empty()  # taken by a worker that then died; the marker stays for its TTL
        assert redis.exists(wake_marker(queue))
        django_hooks.send_event("order.paid", {"n": 2})
        assert queue.count == 1
        queue.empty()
        Delivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
        assert sweep() == 2
        assert queue.count == 1


class RoundTrips:
    """Counts writes to Redis from this process: one per command, pipeline or script call."""

    def __init__(self, monkeypatch):
        import redis.connection

        self.count = 0
        original = redis.connection.Connection.send_packed_command

        def counting(conn, *args, **kwargs):
            self.count += 1
            return original(conn, *args, **kwargs)

        monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)


@pytest.mark.django_db(transaction=True)
def test_each_commit_costs_one_redis_round_trip_wake_up_and_feed_together(redis, monkeypatch):
    """The commit that has to enqueue a drain, the commits that find one waiting, and the feed's
    notification to a listening reader: one round trip each. Nobody listening: no PUBLISH."""
    from django_hooks.outbound.feed import channel_for
    from django_hooks.outbound.wakeups import get_queue, notify, wake_marker

    for n in range(3):
        Endpoint.objects.create(url=f"http://127.0.0.1:9/{n}")
    listener = redis.pubsub()
    listener.subscribe(channel_for(None, None))
    listener.get_message(timeout=1)  # the subscription's confirmation
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"]}):
        queue = get_queue()
        notify(wake=True)  # connected, and the script loaded: once per process and Redis
        queue.connection.delete(wake_marker(queue))
        queue.empty()
        trips = RoundTrips(monkeypatch)
        for n in range(3):
            with transaction.atomic():
                django_hooks.send_event("order.paid", {"n": n})
                django_hooks.send_event("order.shipped", {"n": n})
        assert trips.count == 3
        assert queue.count == 1, "the first commit enqueued a drain, the others found it"
        message = listener.get_message(timeout=1)
        assert message is not None and message["type"] == "message"
        listener.close()

        published = queue.connection.info("commandstats").get("cmdstat_publish", {})
        queue.connection.delete(wake_marker(queue))
        trips.count = 0
        with transaction.atomic():
            django_hooks.send_event("order.paid", {"n": "nobody listening"})
        assert trips.count == 1
        assert queue.count == 2
        assert queue.connection.info("commandstats").get("cmdstat_publish", {}) == published


def test_cached_delivery_inserts_pick_exactly_the_endpoints_the_orm_selects(monkeypatch):
    """The INSERT's SQL is compiled once per shape, then only bound: every later call must pick
    the same endpoints the subscription query does, for every owner, type and endpoint state."""
    from django.utils import timezone

    acme, globex = Organization.objects.create(name="acme"), Organization.objects.create(name="g")
    for owner in (None, acme, globex):
        for types in ([], ["order.*"], ["order.paid"], ["order_x.pa_id"], ["invoice.*"]):
            Endpoint.objects.create(url="http://127.0.0.1:9/", owner=owner, event_types=types)
        Endpoint.objects.create(url="http://127.0.0.1:9/", owner=owner, is_active=False)
        Endpoint.objects.create(url="http://127.0.0.1:9/", owner=owner, disabled_at=timezone.now())
    compiled = []
    real_compile = dispatch._compile_delivery_insert

    def counting(*args):
        compiled.append(args[0].type)
        return real_compile(*args)

    monkeypatch.setattr(dispatch, "_compile_delivery_insert", counting)
    dispatch._INSERT_SQL.clear()
    types = ["order.paid", "order_x.pa_id", "orderxpaid", "invoice.sent.late", "order.paid.now"]
    for _ in range(3):
        for owner in (None, acme, globex):
            for event_type in types:
                event = django_hooks.send_event(event_type, {}, owner=owner)
                expected = set(
                    dispatch.subscribers(owner, event_type, "default").values_list("pk", flat=True)
                )
                assert set(event.deliveries.values_list("endpoint_id", flat=True)) == expected
    # One compilation per shape (owner or not x 1, 2 or 3 patterns), none after.
    assert len(compiled) == len(dispatch._INSERT_SQL) == 6


def test_a_cached_insert_keeps_the_constants_a_django_version_adds_to_its_parameters():
    """Django 6.1 binds ``is_active = %s`` where 5.2 wrote the column alone: the cache finds
    each of the call's values among the ORM's parameters and keeps the others as they are."""
    values = ["msg_1", "pending", 0, "2026-12-03", "2026-12-03", "", "", "%|order.*|%"]
    compiled = [*values[:6], True, *values[6:]]
    slots = dispatch._slots(values, compiled)
    assert slots is not None and slots[6] == (None, True)
    later = ["msg_2", "pending", 0, "2026-12-04", "2026-12-04", "", "", "%|order.*|%"]
    assert [later[i] if i is not None else v for i, v in slots] == [*later[:6], True, *later[6:]]
    # A value the ORM bound differently (False for the attempts' 0) is not found: no cache.
    assert dispatch._slots(values, [*values[:2], False, *values[3:]]) is None
    # A driver's own int type is the same number (psycopg binds Int4(0) for the attempts' 0).
    assert dispatch._slots(values, [*values[:2], Int4(0), *values[3:]]) == [
        (index, None) for index in range(len(values))
    ]


class Int4(int):
    """Stands for psycopg's ``Int4``: an int subclass a driver binds."""


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_prepared_but_not_used_serves_a_later_commit_and_never_twice(redis):
    """Commits that find a drain waiting keep their prepared enqueue for the next commit; each
    drain a commit enqueues is a job of its own."""
    from django_hooks.outbound.wakeups import get_queue, wake_marker

    Endpoint.objects.create(url="http://127.0.0.1:9/hook")
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"]}):
        queue = get_queue()
        for n in range(3):
            for m in range(3):  # the first wakes a drain; the others find it waiting
                with transaction.atomic():
                    django_hooks.send_event("order.paid", {"n": n, "m": m})
            queue.connection.delete(wake_marker(queue))  # as a starting drain does
        ids = queue.get_job_ids()
    assert len(ids) == len(set(ids)) == 3
    assert all(job.func_name == "django_hooks.outbound.tasks.drain" for job in queue.get_jobs())
