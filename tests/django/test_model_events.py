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
