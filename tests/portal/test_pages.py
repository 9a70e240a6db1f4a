"""Every portal page and every action, through the Django test client, behind the site's login
and through a signed link."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

import django_hooks
from django_hooks.event_types import unregister_event_type
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event
from tests.portal.conftest import PORTAL, logged_in, make_endpoint, owned_objects, through_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    django_hooks.register_event_type(
        "order.paid",
        "An order was paid.",
        schema={"type": "object", "properties": {"total": {"type": "string"}}},
        example={"id": 1, "total": "9.90"},
    )
    django_hooks.register_event_type("order.refunded", "An order was refunded.")
    yield
    unregister_event_type("order.paid")
    unregister_event_type("order.refunded")


@pytest.fixture(params=["login", "link"])
def client(request, alice):
    """Alice's browser, either way in."""
    return logged_in(alice) if request.param == "login" else through_link(alice)


def page(client, path, status=200):
    response = client.get(PORTAL + path)
    assert response.status_code == status, response.content.decode()[:2000]
    return response.content.decode()


def test_the_endpoint_list_shows_each_endpoints_health(client, alice):
    assert "No endpoints yet." in page(client, "")
    ids = owned_objects(alice)
    make_endpoint(alice, url="http://127.0.0.1:9/quiet", is_active=False)
    html = page(client, "")
    assert f"http://127.0.0.1:9/{alice.pk}" in html and "http://127.0.0.1:9/quiet" in html
    assert "0 delivered, 1 failed" in html and "0%" in html  # the 24 h figures
    assert ">500</span>" in html  # the last attempt
    assert "Receiving" in html and "Disabled" in html
    assert f"/webhooks/{ids['endpoint']}/" in html


def test_creating_an_endpoint_from_the_catalogue(client, alice, catalogue):
    form = page(client, "new/")
    # The catalogue, with descriptions and schemas; test events are not a subscription.
    assert 'value="order.paid"' in form and "An order was paid." in form
    assert "&quot;total&quot;" in form and "Schema of its data" in form
    assert 'value="webhook.test"' not in form
    response = client.post(
        PORTAL + "new/",
        {
            "url": "https://example.com/hooks",
            "description": "Production",
            "event_types": ["order.paid"],
            "other_types": "invoice.*, order.paid",
            "csrfmiddlewaretoken": csrf(client, "new/"),
        },
    )
    assert response.status_code == 302, response.content.decode()
    endpoint = Endpoint.objects.get()
    assert endpoint.owner == alice and endpoint.description == "Production"
    assert endpoint.event_types == ["order.paid", "invoice.*"]
    assert response["Location"] == f"/webhooks/{endpoint.pk}/?notice=created"
    assert "Endpoint created." in page(client, f"{endpoint.pk}/?notice=created")


def csrf(client, path):
    from tests.portal.conftest import csrf_token_of

    return csrf_token_of(client.get(PORTAL + path))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/", "169.254.169.254 is a cloud metadata address."),
        ("http://10.1.2.3/", "10.1.2.3 is a private address."),
        ("ftp://example.com/", "http"),
        ("", "This field is required."),
    ],
)
def test_a_refused_url_is_named_next_to_the_field(as_alice, url, message):
    response = as_alice.post(PORTAL + "new/", {"url": url, "other_types": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_url_error"' in html and message in html
    assert 'aria-invalid="true"' in html
    assert "Nothing was saved" in html
    assert "ALLOWED_NETWORKS" not in html  # the site's setting: no advice for its customers
    assert not Endpoint.objects.exists()


def test_bad_subscriptions_are_refused_before_anything_is_written(as_alice):
    response = as_alice.post(PORTAL + "new/", {"url": "https://example.com/", "other_types": "a b"})
    assert response.status_code == 400
    assert "&#x27;a b&#x27; is not an event type" in response.content.decode()
    with override_settings(DJANGO_HOOKS={"STRICT_EVENT_TYPES": True}):
        response = as_alice.post(
            PORTAL + "new/", {"url": "https://example.com/", "other_types": "nothing.*"}
        )
    assert response.status_code == 400
    assert "match no declared event type" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_editing_an_endpoint(client, alice, catalogue):
    endpoint = make_endpoint(alice, event_types=["order.paid", "shipment.*"])
    form = page(client, f"{endpoint.pk}/edit/")
    assert 'value="order.paid" id="type-1" checked' in form
    assert 'value="shipment.*"' in form  # not in the catalogue: in the free-text field
    secret = endpoint.secret
    response = client.post(
        PORTAL + f"{endpoint.pk}/edit/",
        {
            "url": "https://example.com/new",
            "description": "moved",
            "event_types": ["order.refunded"],
            "csrfmiddlewaretoken": csrf(client, f"{endpoint.pk}/edit/"),
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description) == ("https://example.com/new", "moved")
    assert endpoint.event_types == ["order.refunded"]
    assert endpoint.secret == secret


def test_the_endpoint_page_shows_health_and_the_chart(client, alice):
    ids = owned_objects(alice)
    html = page(client, f"{ids['endpoint']}/")
    assert "Success rate (24 h)" in html and "0 delivered, 1 failed" in html
    assert "12 ms median" in html  # the attempt's timing
    assert html.count("<rect ") == 96  # 48 hours × delivered and failed, the admin's chart
    assert "1 failed" in html and f"/webhooks/{ids['endpoint']}/deliveries/" in html
    endpoint = Endpoint.objects.get(pk=ids["endpoint"])
    assert endpoint.secret not in html  # never shown outside the reveal and rotate pages


def test_disable_and_enable(client, alice):
    endpoint = make_endpoint(alice)
    token = csrf(client, f"{endpoint.pk}/")
    response = client.post(PORTAL + f"{endpoint.pk}/disable/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "Disabled by you." in page(client, f"{endpoint.pk}/")
    # Disabled automatically for failing: enabling lifts it, as through the API.
    Endpoint.objects.filter(pk=endpoint.pk).update(
        is_active=True,
        disabled_at=timezone.now(),
        disabled_reason="Failing for 5 days.",
        disabled_by="system",
    )
    response = client.post(PORTAL + f"{endpoint.pk}/enable/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.is_receiving


def test_an_operators_disable_holds(client, alice):
    endpoint = make_endpoint(alice)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=timezone.now(), disabled_reason="Abuse.", disabled_by="operator"
    )
    token = csrf(client, f"{endpoint.pk}/")
    response = client.post(PORTAL + f"{endpoint.pk}/enable/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 409
    assert "only an operator can enable it again" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None


def test_delete_asks_then_deletes_the_endpoint_and_its_log(client, alice):
    ids = owned_objects(alice)
    html = page(client, f"{ids['endpoint']}/delete/")
    assert "1 delivery" in html and Endpoint.objects.exists()
    response = client.post(
        PORTAL + f"{ids['endpoint']}/delete/",
        {"csrfmiddlewaretoken": csrf(client, f"{ids['endpoint']}/delete/")},
    )
    assert response.status_code == 302 and response["Location"] == "/webhooks/?notice=deleted"
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
    assert not DeliveryAttempt.objects.exists()


def test_reveal_the_secret_after_confirming_on_a_page_never_stored(client, alice):
    endpoint = make_endpoint(alice)
    confirm = page(client, f"{endpoint.pk}/secret/")
    assert endpoint.secret not in confirm and "Reveal the signing secret?" in confirm
    response = client.post(
        PORTAL + f"{endpoint.pk}/secret/",
        {"csrfmiddlewaretoken": csrf(client, f"{endpoint.pk}/secret/")},
    )
    assert response.status_code == 200
    assert endpoint.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"


def test_rotate_the_secret(client, alice):
    endpoint = make_endpoint(alice)
    old = endpoint.secret
    confirm = page(client, f"{endpoint.pk}/rotate-secret/")
    assert "24 hours" in confirm
    endpoint.refresh_from_db()
    assert endpoint.secret == old  # asking changes nothing
    response = client.post(
        PORTAL + f"{endpoint.pk}/rotate-secret/",
        {"csrfmiddlewaretoken": csrf(client, f"{endpoint.pk}/rotate-secret/")},
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in response.content.decode()
    assert old not in response.content.decode()
    assert endpoint.live_secrets() == [endpoint.secret, old]  # the old one keeps signing
    assert "no-store" in response["Cache-Control"]


def test_send_a_test_event(client, alice, catalogue):
    endpoint = make_endpoint(alice, event_types=["invoice.*"])
    form = page(client, f"{endpoint.pk}/test/")
    assert 'value="webhook.test"' in form and 'value="order.paid"' in form
    assert 'value="order.refunded"' not in form  # no example: nothing a test could carry
    token = csrf(client, f"{endpoint.pk}/test/")
    response = client.post(
        PORTAL + f"{endpoint.pk}/test/", {"event_type": "order.paid", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    delivery = Delivery.objects.get()
    assert delivery.endpoint == endpoint and delivery.event.is_test
    assert delivery.event.data == {"id": 1, "total": "9.90"}
    assert response["Location"] == f"/webhooks/deliveries/{delivery.pk}/?notice=test-sent"
    html = page(client, f"deliveries/{delivery.pk}/?notice=test-sent")
    assert "Test event sent." in html and "&quot;total&quot;: &quot;9.90&quot;" in html


def test_a_test_event_to_a_disabled_endpoint_says_why(client, alice):
    endpoint = make_endpoint(alice, is_active=False)
    response = client.post(
        PORTAL + f"{endpoint.pk}/test/",
        {"event_type": "webhook.test", "csrfmiddlewaretoken": csrf(client, f"{endpoint.pk}/test/")},
    )
    assert response.status_code == 400
    assert "enable it before sending a test event" in response.content.decode()
    assert not Event.objects.exists()
    response = client.post(
        PORTAL + f"{endpoint.pk}/test/",
        {"event_type": "made.up", "csrfmiddlewaretoken": csrf(client, f"{endpoint.pk}/test/")},
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()


def test_the_delivery_log_and_its_filters(client, alice):
    endpoint = make_endpoint(alice, event_types=["order.*", "invoice.*"])
    django_hooks.send_event("order.paid", {}, owner=alice)
    django_hooks.send_event("invoice.sent", {}, owner=alice)
    Delivery.objects.filter(event__type="order.paid").update(status="failed")
    html = page(client, f"{endpoint.pk}/deliveries/")
    assert "order.paid" in html and "invoice.sent" in html
    html = page(client, f"{endpoint.pk}/deliveries/?status=failed")
    assert "order.paid" in html and "invoice.sent" not in html
    html = page(client, f"{endpoint.pk}/deliveries/?event_type=invoice.*")
    assert "order.paid" not in html and "invoice.sent" in html
    html = page(client, f"{endpoint.pk}/deliveries/?status=succeeded")
    assert "No deliveries match these filters." in html
    html = page(client, f"{endpoint.pk}/deliveries/?status=nonsense", status=400)
    assert "Select a valid choice" in html
    html = page(client, f"{endpoint.pk}/deliveries/?event_type=a%20b", status=400)
    assert "is not an event type" in html


def test_the_delivery_log_pages_by_keyset(client, alice, monkeypatch):
    from django_hooks.portal import views

    monkeypatch.setattr(views, "DELIVERIES_PER_PAGE", 2)
    endpoint = make_endpoint(alice)
    for n in range(5):
        django_hooks.send_event(f"order.n{n}", {}, owner=alice)
    html = page(client, f"{endpoint.pk}/deliveries/")
    assert "order.n4" in html and "order.n3" in html and "order.n2" not in html
    ids = list(Delivery.objects.order_by("-pk").values_list("pk", flat=True))
    assert f'href="?before={ids[1]}" id="older"' in html
    html = page(client, f"{endpoint.pk}/deliveries/?before={ids[1]}")
    assert "order.n2" in html and "order.n1" in html and "order.n4" not in html
    # The filters stay on the next page's link.
    html = page(client, f"{endpoint.pk}/deliveries/?status=pending")
    assert f'href="?status=pending&amp;before={ids[1]}"' in html


def test_a_delivery_shows_every_attempt(client, alice):
    ids = owned_objects(alice)
    DeliveryAttempt.objects.create(
        delivery_id=ids["delivery"],
        number=2,
        url="http://127.0.0.1:9/",
        error="timed out",
        duration_ms=2000,
        response_headers={"retry-after": "5"},
    )
    html = page(client, f"deliveries/{ids['delivery']}/")
    assert "Attempt 1: 500, 12 ms" in html and f"down for {alice.pk}" in html
    assert "Attempt 2: no answer, 2000 ms" in html and "timed out" in html
    assert "webhook-id" in html and "retry-after" in html  # request and response headers
    assert "&quot;by&quot;" in html  # the payload
    assert "Retry this delivery" in html


def test_retry_one_delivery(client, alice):
    ids = owned_objects(alice)
    token = csrf(client, f"deliveries/{ids['delivery']}/")
    response = client.post(
        PORTAL + f"deliveries/{ids['delivery']}/retry/", {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    delivery = Delivery.objects.get(pk=ids["delivery"])
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    assert "Retry this delivery" not in page(client, f"deliveries/{ids['delivery']}/")
    # Pending (or succeeded): refused, as the API refuses it.
    response = client.post(
        PORTAL + f"deliveries/{ids['delivery']}/retry/", {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 409 and "only failed or cancelled" in response.content.decode()


def test_recover_failures_since_a_time(client, alice):
    ids = owned_objects(alice)
    older = django_hooks.send_event("order.paid", {}, owner=alice)  # failed 3 days ago: stays
    Delivery.objects.filter(event=older).update(
        status="failed", created_at=timezone.now() - dt.timedelta(days=3)
    )
    old = {"delivery": Delivery.objects.get(event=older).pk}
    assert "Failed since" in page(client, f"{ids['endpoint']}/recover/")
    since = (timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    token = csrf(client, f"{ids['endpoint']}/recover/")
    response = client.post(
        PORTAL + f"{ids['endpoint']}/recover/", {"since": since, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/webhooks/{ids['endpoint']}/deliveries/?notice=recovered&n=1"
    assert Delivery.objects.get(pk=ids["delivery"]).status == "pending"
    assert Delivery.objects.get(pk=old["delivery"]).status == "failed"
    assert "1 failed deliveries queued again." in page(client, response["Location"][len(PORTAL) :])
    # until before since: named next to the field, nothing queued.
    response = client.post(
        PORTAL + f"{ids['endpoint']}/recover/",
        {"since": since, "until": "2000-01-01T00:00", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 400
    assert 'id="id_until_error"' in response.content.decode()


def test_the_event_type_catalogue_and_the_verification_snippets(client, catalogue):
    html = page(client, "event-types/")
    assert "order.paid" in html and "An order was paid." in html and "&quot;total&quot;" in html
    html = page(client, "verify/")
    for title in ("Python", "Node.js", "Django (django-hooks)", "Svix libraries", "Any language"):
        assert title in html
    assert "pip install standardwebhooks" in html and "npm install standardwebhooks" in html


def test_a_notice_is_one_of_ours(as_alice):
    html = page(as_alice, "?notice=<script>alert(1)</script>")
    assert "<script>alert" not in html and 'role="status"' not in html
    html = page(as_alice, "?notice=recovered&n=<b>")
    assert "Some failed deliveries queued again." in html


def test_an_absurd_page_position_is_a_400_not_a_crash(as_alice, alice):
    endpoint = make_endpoint(alice)
    html = page(as_alice, f"{endpoint.pk}/deliveries/?before=" + "9" * 30, status=400)
    assert "Delivery log" in html
