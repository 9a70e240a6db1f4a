"""Portal pages run a constant number of queries, whatever the number of rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from tests.portal.conftest import PORTAL, logged_in, make_endpoint, through_link

pytestmark = pytest.mark.django_db


def add_rows(owner, n):
    """n more endpoints, then n events to all of them, each delivery with two attempts."""
    for i in range(n):
        make_endpoint(owner, url=f"http://127.0.0.1:9/{Endpoint.objects.count()}-{i}")
    for i in range(n):
        django_hooks.send_event("order.paid", {"i": i}, owner=owner)
    now = timezone.now()
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=d,
            number=number,
            url="http://127.0.0.1:9/",
            status_code=500,
            duration_ms=number,
            created_at=now,
        )
        for d in Delivery.objects.filter(attempt_log__isnull=True)
        for number in (1, 2)
    )
    Delivery.objects.update(attempts=2, status="failed")


def count_queries(client, path):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PORTAL + path)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


@pytest.mark.parametrize("how", ["login", "link"])
@pytest.mark.parametrize(
    "page",
    [
        "",
        "{endpoint}/deliveries/",
        "{endpoint}/",
        "{endpoint}/credentials/",
        "deliveries/{delivery}/",
    ],
)
def test_pages_do_not_grow_with_rows(page, how, alice):
    client = logged_in(alice) if how == "login" else through_link(alice)
    add_rows(alice, 1)
    endpoint = Endpoint.objects.order_by("pk").first()
    delivery = Delivery.objects.filter(endpoint=endpoint).order_by("pk").first()
    path = page.format(endpoint=endpoint.pk, delivery=delivery.pk)
    count_queries(client, path)  # caches (content types) warm
    few = count_queries(client, path)
    add_rows(alice, 6)
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(delivery=delivery, number=n, url="http://127.0.0.1:9/") for n in range(3, 9)
    )
    many = count_queries(client, path)
    assert many == few, f"{path}: {few} queries with few rows, {many} with more"
    assert few <= 10  # the endpoint page: its figures, percentiles and chart, one query each


def test_the_list_pages_query_budget(alice):
    """Behind the login: session, user, then the page's own (endpoints: a count, the page with
    each one's latest attempted delivery, the 24 h counts, the last attempts)."""
    client = logged_in(alice)
    add_rows(alice, 3)
    count_queries(client, "")
    assert count_queries(client, "") == 6
    endpoint = Endpoint.objects.first()
    assert count_queries(client, f"{endpoint.pk}/deliveries/") == 4  # + endpoint, deliveries
