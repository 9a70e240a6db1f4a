import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

import django_hooks
from django_hooks.exceptions import EndpointNotReceiving, InvalidEventType
from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.outbound.operations import (
    DeliveryCounts,
    delivery_counts,
    recover_deliveries,
    send_test_event,
)
from django_hooks.testing import drain

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_test_event_goes_to_that_endpoint_alone(receiver, redis):
    target = Endpoint.objects.create(url=receiver.url("/target"), event_types=["order.*"])
    Endpoint.objects.create(url=receiver.url("/other"))  # subscribed to everything
    event = send_test_event(target)
    drain()
    assert event.type == "webhook.test"
    assert [r.path for r in receiver.requests] == ["/target"]
    assert Delivery.objects.get().status == "succeeded"


def test_the_test_event_type_is_a_setting(receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url())
    with override_settings(
        DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"], "TEST_EVENT_TYPE": "ping"}
    ):
        assert send_test_event(endpoint).type == "ping"


def test_no_test_event_to_a_disabled_endpoint():
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/", is_active=False)
    with pytest.raises(EndpointNotReceiving, match="inactive"):
        send_test_event(endpoint)
    assert not Event.objects.exists()


def test_strict_event_types_apply_to_test_events_whoever_sends_them():
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/")
    strict = {"ALLOWED_NETWORKS": ["127.0.0.0/8"], "STRICT_EVENT_TYPES": True}
    with override_settings(DJANGO_HOOKS=strict):
        # With its own data, a caller would not need a declared example: the operation still
        # refuses the undeclared type, as send_event does.
        with pytest.raises(InvalidEventType, match="STRICT_EVENT_TYPES"):
            send_test_event(endpoint, event_type="order.undeclared", data={"id": 1})
        assert not Event.objects.exists()
        assert send_test_event(endpoint).type == "webhook.test"  # the test type is declared


def test_recover_sends_again_the_failed_deliveries_in_the_window(receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url())
    for n in range(3):
        django_hooks.send_event("order.paid", {"n": n})
    deliveries = list(Delivery.objects.order_by("pk"))
    now = timezone.now()
    ages = [dt.timedelta(hours=5), dt.timedelta(hours=2), dt.timedelta(minutes=1)]
    for delivery, age in zip(deliveries, ages, strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(
            status="failed", created_at=now - age, completed_at=now, next_attempt_at=None
        )
    redis.flushdb()
    recovered = recover_deliveries(
        endpoint, since=now - dt.timedelta(hours=3), until=now - dt.timedelta(minutes=30)
    )
    assert recovered == 1
    drain()
    statuses = list(Delivery.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["failed", "succeeded", "failed"]
    with pytest.raises(ValueError, match="later"):
        recover_deliveries(endpoint, since=now, until=now)


def test_delivery_counts_per_endpoint_in_one_query(django_assert_num_queries):
    busy = Endpoint.objects.create(url="http://127.0.0.1:9/a")
    idle = Endpoint.objects.create(url="http://127.0.0.1:9/b")
    event = Event.objects.create(type="order.paid", data={})
    now = timezone.now()
    for status in ["succeeded", "succeeded", "succeeded", "failed", "pending"]:
        Delivery.objects.create(event=event, endpoint=busy, status=status)
    Delivery.objects.create(
        event=event, endpoint=busy, status="failed", created_at=now - dt.timedelta(days=2)
    )
    with django_assert_num_queries(1):
        counts = delivery_counts([busy.pk, idle.pk], since=now - dt.timedelta(hours=24))
    assert counts[busy.pk] == DeliveryCounts(succeeded=3, failed=1, pending=1)
    assert counts[busy.pk].success_rate == 0.75
    assert counts[idle.pk].success_rate is None
    assert counts[idle.pk].total == 0
