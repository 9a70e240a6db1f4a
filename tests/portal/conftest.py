from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

import django_hooks
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.portal import signed_link

PORTAL = "/webhooks/"

# (route, methods, which object's id fills {id})
ROUTES = [
    ("", {"get"}, None),
    ("new/", {"get", "post"}, None),
    ("event-types/", {"get"}, None),
    ("verify/", {"get"}, None),
    ("{id}/", {"get"}, "endpoint"),
    ("{id}/edit/", {"get", "post"}, "endpoint"),
    ("{id}/credentials/", {"get", "post"}, "endpoint"),
    ("{id}/delete/", {"get", "post"}, "endpoint"),
    ("{id}/disable/", {"post"}, "endpoint"),
    ("{id}/enable/", {"post"}, "endpoint"),
    ("{id}/secret/", {"get", "post"}, "endpoint"),
    ("{id}/rotate-secret/", {"get", "post"}, "endpoint"),
    ("{id}/test/", {"get", "post"}, "endpoint"),
    ("{id}/recover/", {"get", "post"}, "endpoint"),
    ("{id}/deliveries/", {"get"}, "endpoint"),
    ("deliveries/{id}/", {"get"}, "delivery"),
    ("deliveries/{id}/retry/", {"post"}, "delivery"),
]


def get_pages(endpoints=(), deliveries=()) -> list[str]:
    """Every page ``ROUTES`` serves to a GET, for each of these endpoint and delivery ids."""
    ids = {"endpoint": list(endpoints), "delivery": list(deliveries), None: [None]}
    return [
        route.format(id=pk)
        for route, methods, kind in ROUTES
        if "get" in methods
        for pk in ids[kind]
    ]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")  # no password: hashing is slow


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob")


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def through_link(owner, **kwargs) -> Client:
    """A browser that opened ``owner``'s signed link: the portal's own session, no site login."""
    client = Client(**kwargs)
    response = client.get(signed_link(owner, expires_in=600))
    assert response.status_code == 303, response.content
    return client


@pytest.fixture
def as_alice(alice):
    return logged_in(alice)


def make_endpoint(owner, url="http://127.0.0.1:9/hook", **fields) -> Endpoint:
    endpoint = Endpoint(url=url, **fields)
    endpoint.owner = owner
    endpoint.save()
    return endpoint


def owned_objects(owner) -> dict[str, int]:
    """An endpoint with a failed delivery that has one attempt."""
    endpoint = make_endpoint(owner, url=f"http://127.0.0.1:9/{owner.pk}")
    event = django_hooks.send_event("order.paid", {"by": owner.pk}, owner=owner)
    delivery = Delivery.objects.get(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=1, last_status_code=500, completed_at=timezone.now()
    )
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=1,
        url=endpoint.url,
        status_code=500,
        request_headers={"webhook-id": event.pk},
        response_body=f"down for {owner.pk}",
        duration_ms=12,
    )
    return {"endpoint": endpoint.pk, "delivery": delivery.pk, "event": event.pk}


def csrf_token_of(response) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, "the page has no CSRF field"
    return match.group(1).decode()
