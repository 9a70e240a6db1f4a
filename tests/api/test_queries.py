"""List routes run a constant number of queries, whatever the number of rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from tests.api.conftest import API

pytestmark = pytest.mark.django_db


def add_rows(owner, n):
    for i in range(n):
        endpoint = Endpoint(url=f"http://127.0.0.1:9/{i}")
        endpoint.owner = owner
        endpoint.save()
    for i in range(n):
        django_hooks.send_event("order.paid", {"i": i}, owner=owner)
    for delivery in Delivery.objects.all():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=1,
            url="http://127.0.0.1:9/",
            status_code=500,
            created_at=timezone.now(),
        )


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize(
    "route", ["endpoints/", "events/", "deliveries/", "events/feed/", "event-types/"]
)
def test_list_queries_do_not_grow_with_rows(route, as_alice, alice, time_travel):
    add_rows(alice, 1)
    time_travel.advance(1)
    few = count_queries(as_alice, API + route)
    add_rows(alice, 6)
    time_travel.advance(1)
    many = count_queries(as_alice, API + route)
    assert many == few
    assert few <= 4  # session, user, then the page (and a count-free cursor)


def test_details_with_children_are_constant_too(as_alice, alice):
    add_rows(alice, 1)
    event = Delivery.objects.get().event
    few_event = count_queries(as_alice, API + f"events/{event.pk}/")
    few_delivery = count_queries(as_alice, API + f"deliveries/{Delivery.objects.get().pk}/")
    add_rows(alice, 5)  # five more endpoints: the next event fans out to six
    event = django_hooks.send_event("order.paid", {}, owner=alice)
    delivery = Delivery.objects.filter(event=event).first()
    for n in range(2, 6):
        DeliveryAttempt.objects.create(delivery=delivery, number=n, url="http://127.0.0.1:9/")
    assert count_queries(as_alice, API + f"events/{event.pk}/") == few_event
    assert count_queries(as_alice, API + f"deliveries/{delivery.pk}/") == few_delivery
