"""Refusals name the fix: a private URL names ALLOWED_NETWORKS (and that production leaves it
empty); a bad ``event_types`` entry is named; in the model, the admin form and the API alike."""

import html

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from rest_framework.test import APIClient

from django_hooks.core.errors import UnsafeURL
from django_hooks.core.urlguard import PrivateHostName, URLGuard
from django_hooks.models import Endpoint

pytestmark = pytest.mark.django_db

NO_NETWORKS = {"DJANGO_HOOKS": {"ALLOWED_NETWORKS": []}}
FIX = 'add its network to DJANGO_HOOKS["ALLOWED_NETWORKS"] (e.g. "127.0.0.0/8" for this machine)'
PRODUCTION = "in production leave ALLOWED_NETWORKS empty"


def url_errors(url, **settings):
    with override_settings(**(settings or NO_NETWORKS)):
        with pytest.raises(ValidationError) as info:
            Endpoint(url=url).full_clean()
    return " ".join(info.value.message_dict["url"])


@pytest.mark.parametrize(
    "url,reason",
    [
        ("http://127.0.0.1:8000/hooks/", "127.0.0.1 is a loopback address"),
        ("http://localhost:8000/hooks/", "localhost is a loopback host name"),
        ("http://10.0.0.7/hooks/", "10.0.0.7 is a private address"),
        ("http://[::1]:8000/", "::1 is a loopback address"),
        ("http://receiver/hooks/", "receiver is a single-label host name"),
        ("http://printer.local/", "printer.local is under .local"),
    ],
)
def test_a_private_url_names_allowed_networks_and_says_production_leaves_it_empty(url, reason):
    message = url_errors(url)
    assert message.startswith(reason)
    assert FIX in message and PRODUCTION in message


def test_an_address_outside_a_set_allow_list_names_it_too():
    allowed = {"DJANGO_HOOKS": {"ALLOWED_NETWORKS": ["10.0.0.0/8"]}}
    message = url_errors("http://192.168.1.5/", **allowed)
    assert message.startswith("192.168.1.5 is a private address") and FIX in message


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "https://user:pw@example.com/", "http://exa mple.com/"]
)
def test_refusals_allow_listing_cannot_lift_do_not_mention_it(url):
    assert "ALLOWED_NETWORKS" not in url_errors(url)


def test_private_host_names_stay_unsafe_url_errors():
    with pytest.raises(PrivateHostName) as info:
        URLGuard().check_url("http://localhost/")
    assert isinstance(info.value, UnsafeURL) and isinstance(info.value, ValueError)


def test_the_api_names_allowed_networks(django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("alice"))
    with override_settings(**NO_NETWORKS):
        response = client.post(
            "/api/hooks/endpoints/", {"url": "http://127.0.0.1:8000/"}, format="json"
        )
    assert response.status_code == 400
    [message] = response.json()["url"]
    assert FIX in message and PRODUCTION in message


def test_the_admin_form_names_allowed_networks_and_the_bad_event_type(admin_client):
    with override_settings(**NO_NETWORKS):
        page = admin_client.post(
            "/admin/django_hooks/endpoint/add/",
            {
                "url": "http://localhost:8000/",
                "event_types": '["order.*", "order paid"]',
                "headers": "{}",
            },
        )
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "localhost is a loopback host name" in text and FIX in text and PRODUCTION in text
    assert "'order paid' is not an event type or pattern" in text
    assert not Endpoint.objects.exists()


def test_each_bad_event_type_entry_is_named():
    with pytest.raises(ValidationError) as info:
        Endpoint(
            url="https://example.com/", event_types=["order.*", "order paid", 3, "a..b"]
        ).full_clean()
    problems = info.value.message_dict["event_types"]
    assert problems == [
        "'order paid' is not an event type or pattern: use names such as \"order.paid\", "
        'a pattern such as "order.*", or "*" for every event.',
        '3 is not an event type: entries are strings such as "order.paid", a pattern such as '
        '"order.*", or "*" for every event.',
        "'a..b' is not an event type or pattern: use names such as \"order.paid\", a pattern "
        'such as "order.*", or "*" for every event.',
    ]


def test_event_types_that_are_not_a_list_say_what_they_are():
    with pytest.raises(ValidationError) as info:
        Endpoint(url="https://example.com/", event_types="order.paid").full_clean()
    [problem] = info.value.message_dict["event_types"]
    assert problem.startswith("Must be a list of event types") and problem.endswith("got str.")


def test_the_api_names_the_bad_event_type(django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("alice"))
    response = client.post(
        "/api/hooks/endpoints/",
        {"url": "https://example.com/", "event_types": ["order.*", "order paid"]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["event_types"][0].startswith("'order paid' is not an event type")
