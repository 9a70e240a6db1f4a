"""One django-hooks site delivering to another's @webhook_receiver over real HTTP and real RQ."""

import pytest

import django_hooks
from django_hooks.models import Delivery, Endpoint, InboundWebhook
from django_hooks.outbound.sweep import sweep
from django_hooks.testing import drain
from tests.testapp import views

pytestmark = pytest.mark.django_db(transaction=True)


def test_outbound_delivers_to_a_standard_receiver_exactly_once(live_server, redis):
    views.calls.clear()
    endpoint = Endpoint.objects.create(
        url=f"{live_server.url}/hooks/standard/", secret=views.SECRET
    )
    event = django_hooks.send_event("order.paid", {"id": 42, "total": "9.90"})
    drain()
    # A second copy of the same delivery (as after a worker crash) is dropped by the receiver.
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status="pending", next_attempt_at=delivery.created_at
    )
    assert sweep(grace=0) == 1
    drain()

    assert [call.id for call in views.calls] == [event.id]
    assert views.calls[0].payload["data"] == {"id": 42, "total": "9.90"}
    assert views.calls[0].type == "order.paid"
    record = InboundWebhook.objects.get()
    assert record.webhook_id == event.id and record.status == "processed"
    assert Delivery.objects.get().attempt_log.count() == 2  # the duplicate got 200, not a rerun
    assert endpoint.pk == delivery.endpoint_id
    views.calls.clear()
