import pytest
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from django_hooks import model_events
from django_hooks.exceptions import ConfigurationError
from django_hooks.models import Delivery, Endpoint, Event
from tests.testapp.models import Order, Organization
from tests.testapp.serializers import OrderSerializer

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected():
    def connect(**options):
        model_events(Order, **options)

    yield connect
    post_save.disconnect(sender=Order, dispatch_uid="django_hooks:testapp.Order:save")
    post_delete.disconnect(sender=Order, dispatch_uid="django_hooks:testapp.Order:delete")


def test_created_updated_deleted_with_a_drf_serializer(connected):
    connected(prefix="order", serializer=OrderSerializer)
    Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["order.*"])
    order = Order.objects.create(total="9.90")
    order.status = "paid"
    order.save()
    order_id = order.pk
    order.delete()
    events = list(Event.objects.order_by("created_at", "id").values_list("type", "data"))
    assert events == [
        ("order.created", {"id": order_id, "total": "9.90", "status": "new"}),
        ("order.updated", {"id": order_id, "total": "9.90", "status": "paid"}),
        ("order.deleted", {"id": order_id, "total": "9.90", "status": "paid"}),
    ]
    assert Delivery.objects.count() == 3


def test_default_payload_is_model_to_dict_and_owner_is_an_attribute_path(connected):
    connected(owner="organization")
    acme = Organization.objects.create(name="acme")
    ep = Endpoint(url="http://127.0.0.1:9/")
    ep.owner = acme
    ep.save()
    Order.objects.create(total="1.00", organization=acme)
    event = Event.objects.get()
    assert event.type == "order.created" and event.owner == acme
    assert event.data["total"] == "1.00" and event.data["organization"] == acme.pk
    assert Delivery.objects.get().endpoint == ep


def test_the_event_is_in_the_same_transaction_as_the_change(connected):
    connected(prefix="order")
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(total="1.00")
        raise RuntimeError
    assert not Order.objects.exists() and not Event.objects.exists()


def test_bad_configuration_is_reported():
    with pytest.raises(ConfigurationError, match="action"):
        model_events(Order, actions=("archived",))
    with pytest.raises(ConfigurationError, match="serializer"):
        model_events(Order, serializer=42)


class Unserializable(Exception):
    pass


def broken_payload(instance):
    raise Unserializable(f"cannot serialize order {instance.pk}")


def test_a_serializer_error_aborts_the_save_with_its_own_error(connected):
    connected(prefix="order", serializer=broken_payload)
    Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["order.*"])
    with pytest.raises(Unserializable, match="cannot serialize order"), transaction.atomic():
        Order.objects.create(total="1.00")
    # No business change without its event: the row went with the event that could not be made.
    assert not Order.objects.exists() and not Event.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_row_is_committed_before_the_serializer_fails(connected):
    # Why the docs say to save inside transaction.atomic(): post_save runs after the commit.
    connected(prefix="order", serializer=broken_payload)
    with pytest.raises(Unserializable):
        Order.objects.create(total="1.00")
    assert Order.objects.count() == 1 and not Event.objects.exists()


def test_unowned_events_skip_owned_endpoints_and_owned_events_skip_unowned_ones(connected):
    connected(prefix="order", owner="organization")
    acme = Organization.objects.create(name="acme")
    unowned = Endpoint.objects.create(url="http://127.0.0.1:9/everyone")
    acmes = Endpoint(url="http://127.0.0.1:9/acme")
    acmes.owner = acme
    acmes.save()
    Order.objects.create(total="1.00")  # no organization: an event without an owner
    Order.objects.create(total="2.00", organization=acme)
    received = {
        (d.event.data["total"], d.endpoint.url)
        for d in Delivery.objects.select_related("event", "endpoint")
    }
    assert received == {("1.00", unowned.url), ("2.00", acmes.url)}


def test_connecting_twice_sends_each_event_once(connected):
    # ready() may run more than once (tests, some servers): connecting again changes nothing.
    connected(prefix="order")
    connected(prefix="order")
    Order.objects.create(total="1.00")
    assert list(Event.objects.values_list("type", flat=True)) == ["order.created"]


def test_the_model_events_setting_connects_as_the_call_does(connected):
    from django.test import override_settings

    from django_hooks.outbound.dispatch import connect_model_events_setting

    setting = {
        "testapp.Order": {
            "prefix": "order",
            "serializer": "tests.testapp.serializers.OrderSerializer",
        }
    }
    with override_settings(DJANGO_HOOKS={"MODEL_EVENTS": setting}):
        connect_model_events_setting()
    order = Order.objects.create(total="3.00")
    assert list(Event.objects.values_list("type", "data")) == [
        ("order.created", {"id": order.pk, "total": "3.00", "status": "new"})
    ]
