"""The admin as the webhook console, through Django's test client: every page, every button and
action, permissions, CSRF, and query counts that do not grow with the rows."""

import datetime as dt
import html
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

import django_hooks
from django_hooks.core.signing import generate_secret
from django_hooks.internal import encryption
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, InboundWebhook
from django_hooks.testing import drain
from tests.receiver import Reply
from tests.testapp.models import Organization

pytestmark = pytest.mark.django_db(transaction=True)

ENDPOINTS = "/admin/django_hooks/endpoint/"
DELIVERIES = "/admin/django_hooks/delivery/"
EVENTS = "/admin/django_hooks/event/"
INBOUND = "/admin/django_hooks/inboundwebhook/"


@pytest.fixture
def admin_client_():
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


@pytest.fixture
def viewer():
    """A staff user who may view everything and change nothing."""
    user = User.objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_hooks", codename__startswith="view"
        )
    )
    client = Client()
    client.force_login(user)
    return client


def endpoint_url(endpoint, action=""):
    return f"{ENDPOINTS}{endpoint.pk}/{action + '/' if action else 'change/'}"


def text(response):
    return response.content.decode()


def assert_no_secret(response, endpoint):
    body = response.content
    secret = endpoint.secret
    assert secret.encode() not in body and secret.removeprefix("whsec_").encode() not in body
    assert endpoint.secret_ciphertext.encode() not in body


# -- endpoints: the list -----------------------------------------------------------------------


def test_the_endpoint_list_shows_health_at_a_glance(admin_client_, receiver, redis):
    org = Organization.objects.create(name="Acme Corp")
    healthy = Endpoint.objects.create(url=receiver.url("/ok"), event_types=["order.*"])
    healthy.owner = org
    healthy.save()
    broken = Endpoint.objects.create(url=receiver.url("/broken"))
    receiver.script("/broken", Reply(500), Reply(500), Reply(500), Reply(500))
    for n in range(3):
        django_hooks.send_event("order.paid", {"n": n}, owner=org)
    django_hooks.send_event("order.paid", {"n": 9})
    drain()
    Endpoint.objects.filter(pk=broken.pk).update(
        disabled_at=timezone.now(), disabled_reason="The endpoint answered 410 Gone."
    )

    response = admin_client_.get(ENDPOINTS)
    assert response.status_code == 200
    rows = {}
    for row in text(response).split("<tr")[1:]:
        link = re.search(rf'href="({ENDPOINTS}\d+/change/)', row)
        if link:
            rows[link[1]] = row
    ok_row = rows[f"{ENDPOINTS}{healthy.pk}/change/"]
    assert str(org) in ok_row and "order.*" in ok_row
    assert "3 delivered<br>0 failed" in ok_row and ">100%<" in ok_row and ">200<" in ok_row
    assert "receiving" in ok_row
    broken_row = rows[f"{ENDPOINTS}{broken.pk}/change/"]
    assert "disabled" in broken_row and "410 Gone" in broken_row and "all events" in broken_row
    assert (
        "0 delivered<br>1 failed" in broken_row and ">0%<" in broken_row and ">500<" in broken_row
    )
    assert_no_secret(response, healthy)
    assert_no_secret(response, broken)

    filtered = admin_client_.get(ENDPOINTS + "?state=disabled")
    assert str(broken.pk) in text(filtered) and f"{healthy.pk}/change/" not in text(filtered)


def many_endpoints(count):
    """``count`` endpoints, each with a succeeded, a failed and a pending delivery, attempts."""
    ciphertext = encryption.encrypt(generate_secret())
    endpoints = Endpoint.objects.bulk_create(
        [
            Endpoint(url=f"https://hooks{n}.example.com/", secret_ciphertext=ciphertext)
            for n in range(count)
        ]
    )
    event = Event.objects.create(type="order.paid", data={"n": 1})
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(event=event, endpoint=e, status=status, attempts=1)
            for e in endpoints
            for status in ("succeeded", "failed", "pending")
        ]
    )
    DeliveryAttempt.objects.bulk_create(
        [
            DeliveryAttempt(
                delivery=d, number=1, url=d.endpoint.url, status_code=200, duration_ms=5
            )
            for d in deliveries
        ]
    )
    return endpoints


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_list_pages_issue_the_same_few_queries_for_3_rows_or_200(admin_client_):
    admin_client_.get(ENDPOINTS)  # warm the session and the content type cache
    many_endpoints(3)
    for n in range(3):
        InboundWebhook.objects.create(source="s", provider="standard", webhook_id=f"w{n}", body=b"")
    small = {
        url: count_queries(admin_client_, url) for url in (ENDPOINTS, DELIVERIES, EVENTS, INBOUND)
    }

    many_endpoints(197)
    Event.objects.bulk_create([Event(type="order.paid", data={}) for _ in range(200)])
    InboundWebhook.objects.bulk_create(
        [
            InboundWebhook(source="s", provider="github", webhook_id=f"x{n}", body=b"{}")
            for n in range(200)
        ]
    )
    large = {
        url: count_queries(admin_client_, url) for url in (ENDPOINTS, DELIVERIES, EVENTS, INBOUND)
    }
    assert large == small
    assert max(large.values()) <= 12


def test_the_endpoint_list_with_200_rows_stays_under_a_fixed_query_budget(
    admin_client_, django_assert_max_num_queries
):
    many_endpoints(200)
    admin_client_.get(ENDPOINTS)
    with django_assert_max_num_queries(10):
        response = admin_client_.get(ENDPOINTS)
    assert text(response).count("1 delivered<br>1 failed<br>1 pending") == 100  # one page


def test_the_other_lists_with_200_rows_stay_under_a_fixed_query_budget(
    admin_client_, django_assert_max_num_queries
):
    many_endpoints(70)  # 210 deliveries
    Event.objects.bulk_create(
        [Event(type="order.paid", data={"big": "x" * 1000}) for _ in range(200)]
    )
    InboundWebhook.objects.bulk_create(
        [
            InboundWebhook(source="s", provider="github", webhook_id=f"x{n}", body=b"{}")
            for n in range(200)
        ]
    )
    for url in (
        DELIVERIES,
        DELIVERIES + "?status=failed",
        EVENTS,
        EVENTS + "?type=order.paid",
        INBOUND,
        INBOUND + "?provider=github",
        DELIVERIES + "?_facets=True",
        ENDPOINTS + "?_facets=True&state=receiving",
    ):
        with django_assert_max_num_queries(10):
            assert admin_client_.get(url).status_code == 200, url


# -- endpoints: the change page ----------------------------------------------------------------


def test_the_change_page_charts_delivered_and_failed_per_hour(admin_client_):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    event = Event.objects.create(type="order.paid", data={})
    now = timezone.now()
    for hours_ago, status, n in [
        (1, "succeeded", 7),
        (1, "failed", 2),
        (30, "succeeded", 4),
        (60, "failed", 5),
    ]:
        Delivery.objects.bulk_create(
            [
                Delivery(
                    event=event,
                    endpoint=endpoint,
                    status=status,
                    created_at=now - dt.timedelta(hours=hours_ago),
                )
                for _ in range(n)
            ]
        )
    response = admin_client_.get(endpoint_url(endpoint))
    page = text(response)
    assert response.status_code == 200
    assert "<svg" in page and 'role="img"' in page
    # 48 hours: the deliveries of 60 hours ago are outside the chart.
    assert "last 48 hours: 11 delivered, 2 failed" in page
    hour = (now - dt.timedelta(hours=1)).astimezone(dt.UTC)
    assert f"{hour:%Y-%m-%d %H}:00:00 UTC: 7 delivered, 2 failed" in page
    assert page.count("<g><title>") == 48
    assert "7 delivered<br>2 failed" in page  # the 24 h figures
    assert_no_secret(response, endpoint)


def test_send_test_event_button_delivers_to_that_endpoint(admin_client_, receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url(), event_types=["order.*"])
    response = admin_client_.post(endpoint_url(endpoint, "send-test"), follow=True)
    assert "Test event" in text(response) and "sent." in text(response)
    drain()
    (request,) = receiver.requests
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["type"] == "webhook.test"
    assert Delivery.objects.get().status == "succeeded"
    assert LogEntry.objects.filter(
        object_id=str(endpoint.pk), change_message__startswith="Sent test"
    ).exists()


def test_send_test_event_to_a_disabled_endpoint_explains_why_not(admin_client_):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    Endpoint.objects.filter(pk=endpoint.pk).update(disabled_at=timezone.now())
    response = admin_client_.post(endpoint_url(endpoint, "send-test"), follow=True)
    assert "is disabled; enable it before sending a test event" in text(response)
    assert not Event.objects.exists()


def test_disable_and_enable_buttons(admin_client_, receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url())
    response = admin_client_.post(endpoint_url(endpoint, "disable"), follow=True)
    assert "Disabled: no attempts until enabled." in text(response)
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and "Disabled by admin" in endpoint.disabled_reason
    django_hooks.send_event("order.paid", {})
    assert not Delivery.objects.exists()  # no deliveries while disabled

    # A delivery left pending from before the disable resumes on enable.
    Endpoint.objects.filter(pk=endpoint.pk).update(disabled_at=None)
    django_hooks.send_event("order.paid", {})
    Endpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=timezone.now(), failing_since=timezone.now()
    )
    redis.flushdb()
    response = admin_client_.post(endpoint_url(endpoint, "enable"), follow=True)
    assert "Enabled; 1 pending deliveries resumed." in text(response)
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None and endpoint.failing_since is None
    drain()
    assert Delivery.objects.get().status == "succeeded"


def test_rotate_shows_the_new_secret_once_and_the_old_one_keeps_signing(admin_client_):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    old = endpoint.secret
    response = admin_client_.post(endpoint_url(endpoint, "rotate-secret"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    endpoint.refresh_from_db()
    new = endpoint.secret
    assert new != old and new in text(response) and old not in text(response)
    assert endpoint.live_secrets() == [new, old]
    assert LogEntry.objects.filter(change_message="Rotated the signing secret.").count() == 1
    # Shown once: the change page and the list never show it.
    assert_no_secret(admin_client_.get(endpoint_url(endpoint)), endpoint)
    assert_no_secret(admin_client_.get(ENDPOINTS), endpoint)


def test_reveal_is_an_explicit_post_and_is_logged(admin_client_):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    assert admin_client_.get(endpoint_url(endpoint, "reveal-secret")).status_code == 405
    assert not LogEntry.objects.exists()
    response = admin_client_.post(endpoint_url(endpoint, "reveal-secret"))
    assert response.status_code == 200 and endpoint.secret in text(response)
    assert "no-store" in response["Cache-Control"]
    entry = LogEntry.objects.get()
    assert entry.change_message == "Revealed the signing secret." and entry.user.username == "admin"
    assert entry.object_id == str(endpoint.pk)
    endpoint.refresh_from_db()
    assert endpoint.live_secrets() == [endpoint.secret]  # revealing changes nothing


def test_recover_sends_again_the_failures_since_the_chosen_time(admin_client_, receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url())
    for n in range(3):
        django_hooks.send_event("order.paid", {"n": n})
    now = timezone.now()
    ages = [dt.timedelta(days=3), dt.timedelta(hours=5), dt.timedelta(minutes=10)]
    for delivery, age in zip(Delivery.objects.order_by("pk"), ages, strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(
            status="failed", created_at=now - age, completed_at=now, next_attempt_at=None
        )
    redis.flushdb()
    since = timezone.localtime(now - dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M")
    response = admin_client_.post(endpoint_url(endpoint, "recover"), {"since": since}, follow=True)
    assert "2 failed deliveries since" in text(response)
    drain()
    statuses = list(Delivery.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["failed", "succeeded", "succeeded"]
    assert len(receiver.requests) == 2


def test_recover_refuses_a_bad_window_and_changes_nothing(admin_client_):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    event = Event.objects.create(type="order.paid", data={})
    Delivery.objects.create(event=event, endpoint=endpoint, status="failed")
    for data, problem in [
        ({}, "Failed since This field is required."),
        ({"since": "yesterday"}, "Enter a valid date/time."),
        (
            {"since": "2026-11-20T10:00", "until": "2026-11-20T09:00"},
            "“until” must be later than “since”.",
        ),
    ]:
        response = admin_client_.post(endpoint_url(endpoint, "recover"), data, follow=True)
        assert "Nothing recovered" in text(response) and problem in text(response), data
    assert Delivery.objects.get().status == "failed"


def test_operator_buttons_need_the_change_permission(viewer, admin_client_):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    event = Event.objects.create(type="order.paid", data={})
    Delivery.objects.create(event=event, endpoint=endpoint, status="failed")
    before = (endpoint.secret_ciphertext, endpoint.disabled_at)
    page = viewer.get(endpoint_url(endpoint))
    assert page.status_code == 200 and "<svg" in text(page)
    assert "Rotate secret" not in text(page) and "Reveal secret" not in text(page)
    for action in ("send-test", "disable", "enable", "rotate-secret", "reveal-secret", "recover"):
        response = viewer.post(endpoint_url(endpoint, action), {"since": "2020-01-01T00:00"})
        assert response.status_code == 403, action
        assert endpoint.secret.encode() not in response.content
    endpoint.refresh_from_db()
    assert (endpoint.secret_ciphertext, endpoint.disabled_at) == before
    assert not Event.objects.exclude(pk=event.pk).exists()
    assert Delivery.objects.get().status == "failed" and not LogEntry.objects.exists()
    # The superuser sees the buttons.
    assert "Rotate secret" in text(admin_client_.get(endpoint_url(endpoint)))


def test_operator_buttons_need_a_csrf_token():
    user = User.objects.create_superuser("admin", "a@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    old = endpoint.secret
    assert client.post(endpoint_url(endpoint, "rotate-secret")).status_code == 403
    assert client.post(endpoint_url(endpoint, "reveal-secret")).status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.secret == old and not LogEntry.objects.exists()
    # With the page's token, the same POST works.
    page = text(client.get(endpoint_url(endpoint)))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    response = client.post(endpoint_url(endpoint, "rotate-secret"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.secret != old


def endpoint_form(**fields):
    """What the add/change form posts: event types as typed, headers as (name, value) rows."""
    headers = fields.pop("headers", [])
    data = {
        "url": "https://hooks.example.com/in",
        "description": "",
        "event_types": "",
        "is_active": "on",
        "owner_content_type": "",
        "owner_id": "",
        "signing_scheme": "hmac",
        **fields,
    }
    for index, (name, value) in enumerate([*headers, ("", ""), ("", "")]):
        data[f"headers-{index}-name"], data[f"headers-{index}-value"] = name, value
    return data


def form_errors(response):
    """The messages of the page's error lists, unescaped."""
    lists = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', text(response), re.DOTALL)
    return [html.unescape(item) for items in lists for item in re.findall(r"<li>(.*?)</li>", items)]


def test_an_endpoint_is_created_and_edited_from_the_admin(admin_client_):
    response = admin_client_.post(
        ENDPOINTS + "add/",
        endpoint_form(
            url="hooks.example.com/in",
            description="Billing",
            event_types="order.*\r\ninvoice.paid, customer.created\r\n\r\n",
            headers=[("X-Api-Key", "k-1"), ("", "")],
        ),
    )
    assert response.status_code == 302, text(response)
    endpoint = Endpoint.objects.get()
    assert endpoint.url == "https://hooks.example.com/in" and endpoint.secret.startswith("whsec_")
    assert endpoint.event_types == ["order.*", "invoice.paid", "customer.created"]
    assert endpoint.event_types_match == "|customer.created|invoice.paid|order.*|"
    assert endpoint.headers == {"X-Api-Key": "k-1"}
    secret = endpoint.secret

    # The change page shows them back as typed: one type per line, one row per header.
    page = text(admin_client_.get(endpoint_url(endpoint)))
    assert ">\norder.*\ninvoice.paid\ncustomer.created</textarea>" in page
    assert 'name="headers-0-name" id="id_headers-0-name" value="X-Api-Key"' in page
    assert 'name="headers-0-value" id="id_headers-0-value" value="k-1"' in page
    assert 'name="headers-3-name"' in page and 'name="headers-4-name"' not in page  # 3 spare

    response = admin_client_.post(
        endpoint_url(endpoint),
        endpoint_form(
            description="Billing v2",
            event_types="order.paid",
            headers=[("", ""), ("Authorization", "Bearer t")],
        ),
    )
    assert response.status_code == 302, text(response)
    endpoint.refresh_from_db()
    assert endpoint.description == "Billing v2" and endpoint.event_types_match == "|order.paid|"
    assert endpoint.headers == {"Authorization": "Bearer t"}
    assert endpoint.secret == secret  # editing never touches the secret

    # Emptied, the subscriptions are every event and the headers none.
    admin_client_.post(endpoint_url(endpoint), endpoint_form(event_types=" \r\n"))
    endpoint.refresh_from_db()
    assert endpoint.event_types == [] and endpoint.headers == {}


def test_the_admin_names_each_bad_event_type_as_the_api_does(admin_client_):
    from rest_framework.test import APIClient

    too_long = "order." + "x" * 250
    bad = ["order.*", "order paid", "a..b", "order.*.paid"]
    response = admin_client_.post(ENDPOINTS + "add/", endpoint_form(event_types="\n".join(bad)))
    assert response.status_code == 200 and not Endpoint.objects.exists()
    admin_problems = form_errors(response)
    api = APIClient()
    api.force_login(User.objects.create_user("alice"))
    answer = api.post(
        "/api/hooks/endpoints/",
        {"url": "https://hooks.example.com/", "event_types": bad},
        format="json",
    )
    assert answer.status_code == 400
    assert admin_problems == answer.json()["event_types"]
    assert [problem.split(" is not")[0] for problem in admin_problems] == [
        "'order paid'",
        "'a..b'",
        "'order.*.paid'",
    ]
    # The text comes back as typed, to be corrected.
    assert "order.*\norder paid\na..b\norder.*.paid</textarea>" in text(response)

    response = admin_client_.post(ENDPOINTS + "add/", endpoint_form(event_types=too_long))
    assert form_errors(response) == [f"{too_long[:40]!r}… is over 255 characters."]
    response = admin_client_.post(
        ENDPOINTS + "add/", endpoint_form(event_types=",".join(f"t{n}" for n in range(201)))
    )
    assert form_errors(response) == ["At most 200 event types; got 201."]
    assert not Endpoint.objects.exists()


def test_header_rows_are_checked_by_the_header_rules_each_named(admin_client_):
    for rows, problems in [
        (
            [("Host", "evil.example")],
            ["'Host' is set by django-hooks or a proxy: cannot be replaced."],
        ),
        ([("X-Key", "a"), ("", "orphan")], ["Row 2 has a value but no header name."]),
        (
            [("X-Key", "a"), ("x-key", "b")],
            [
                "'x-key' is given twice (as 'X-Key' too): header names are case-insensitive, so give "
                "each one once."
            ],
        ),
        (
            [("Bad Name", "v"), ("X-Ok", "é")],
            [
                "'Bad Name' is not a valid header name.",
                "The value of 'X-Ok' must be ASCII without leading or trailing spaces.",
            ],
        ),
        ([(f"X-{n}", "v") for n in range(21)], ["At most 20 headers; got 21."]),
    ]:
        response = admin_client_.post(ENDPOINTS + "add/", endpoint_form(headers=rows))
        assert response.status_code == 200, rows
        assert form_errors(response) == problems, rows
        # Every row comes back as typed, with the spare rows once.
        assert f'value="{html.escape(rows[-1][1])}"' in text(response)
        shown = len(re.findall(r'name="headers-\d+-name"', text(response)))
        assert shown == len(rows) + max(0, min(3, 20 - len(rows))), rows
    assert not Endpoint.objects.exists()


def test_the_owner_is_set_by_type_and_id_and_checked(admin_client_):
    from django.contrib.contenttypes.models import ContentType

    org = Organization.objects.create(name="Acme Corp")
    org_type = ContentType.objects.get_for_model(Organization).pk
    choices = text(admin_client_.get(ENDPOINTS + "add/"))
    choices = choices[choices.index('name="owner_content_type"') :].split("</select>")[0]
    assert "Testapp | organization" in choices and "no owner" in choices
    assert "Webhooks" not in choices and "Sessions" not in choices  # never owners

    for owner_type, owner_id, field_problem in [
        (org_type, "999", "There is no organization with id '999'."),
        (org_type, "abc", "There is no organization with id 'abc'."),
        (org_type, "9" * 30, f"There is no organization with id '{'9' * 30}'."),
        (
            org_type,
            "",
            "Enter the id of the organization that owns this endpoint, or choose “no owner”.",
        ),
        (
            "",
            str(org.pk),
            f"Choose the type of the owner with id '{org.pk}', or clear the owner id.",
        ),
    ]:
        response = admin_client_.post(
            ENDPOINTS + "add/", endpoint_form(owner_content_type=owner_type, owner_id=owner_id)
        )
        assert form_errors(response) == [field_problem]
    assert not Endpoint.objects.exists()

    response = admin_client_.post(
        ENDPOINTS + "add/", endpoint_form(owner_content_type=org_type, owner_id=f" {org.pk} ")
    )
    assert response.status_code == 302, text(response)
    endpoint = Endpoint.objects.get()
    assert endpoint.owner == org and list(Endpoint.objects.owned_by(org)) == [endpoint]
    assert str(org) in text(admin_client_.get(ENDPOINTS))
    admin_client_.post(endpoint_url(endpoint), endpoint_form())
    endpoint.refresh_from_db()
    assert endpoint.owner_content_type_id is None and endpoint.owner_id is None


def test_the_add_form_shows_no_read_only_fields_and_labels_every_input(admin_client_):
    page = text(admin_client_.get(ENDPOINTS + "add/"))
    form = page[page.index('id="endpoint_form"') : page.index('class="submit-row"')]
    for read_only in (
        "id",
        "state",
        "disabled_at_display",
        "disabled_reason",
        "failing_since_display",
        "owner_display",
        "created_display",
        "updated_display",
    ):
        assert f"field-{read_only}" not in form, read_only
    assert 'class="readonly"' not in form
    labelled = set(re.findall(r'<label[^>]* for="([^"]+)"', form))
    inputs = re.findall(r'<(?:input|textarea|select)\b[^>]*\bid="([^"]+)"', form)
    hidden = set(re.findall(r'<input type="hidden"[^>]*id="([^"]+)"', form))
    assert len(inputs) >= 14 and set(inputs) - hidden - labelled == set()

    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    page = text(admin_client_.get(endpoint_url(endpoint)))
    assert "field-state" in page and "field-created_display" in page


def test_the_lists_show_the_ids_the_commands_take(admin_client_):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    call = InboundWebhook.objects.create(source="s", provider="standard", webhook_id="w1", body=b"")
    for listing, pk in [(ENDPOINTS, endpoint.pk), (INBOUND, call.pk)]:
        page = text(admin_client_.get(listing))
        assert re.search(r'<th scope="col" class="[^"]*column-id', page), listing
        assert re.search(
            rf'<th class="field-id"><a href="{listing}{pk}/change/[^"]*">{pk}</a>', page
        )
    searched = text(admin_client_.get(f"{ENDPOINTS}?q={endpoint.pk}"))
    assert f"{ENDPOINTS}{endpoint.pk}/change/" in searched


def test_every_admin_page_shows_times_in_one_format(admin_client_, receiver, redis):
    endpoint = Endpoint.objects.create(url=receiver.url())
    receiver.script("/hook", Reply(500))
    event = django_hooks.send_event("order.paid", {"id": 1})
    drain()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=timezone.now(), failing_since=timezone.now()
    )
    delivery = Delivery.objects.get()
    call = InboundWebhook.objects.create(
        source="s", provider="standard", webhook_id="w1", body=b"", processed_at=timezone.now()
    )
    pages = [
        ENDPOINTS,
        endpoint_url(endpoint),
        EVENTS,
        f"{EVENTS}{event.pk}/change/",
        DELIVERIES,
        f"{DELIVERIES}{delivery.pk}/change/",
        INBOUND,
        f"{INBOUND}{call.pk}/change/",
    ]
    one_format = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    django_formats = re.compile(
        r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}\b|[ap]\.m\."
    )
    shown = 0
    for url in pages:
        page = text(admin_client_.get(url))
        body = page[page.index('id="content"') :]
        times = re.findall(r"<time datetime=\"[^\"]+\">([^<]*)</time>", body)
        assert times and all(re.fullmatch(one_format, t) for t in times), (url, times)
        assert not django_formats.search(re.sub(r"<[^>]+>", " ", body)), (
            url,
            django_formats.search(re.sub(r"<[^>]+>", " ", body)),
        )
        shown += len(times)
    assert shown >= 15
    # The chart's hours and the recover message say times the same way.
    page = text(admin_client_.get(endpoint_url(endpoint)))
    assert re.search(rf"<title>{one_format[:-4]}[^<]* UTC: \d+ delivered", page)
    since = timezone.now().strftime("%Y-%m-%dT%H:%M")
    done = admin_client_.post(endpoint_url(endpoint, "recover"), {"since": since}, follow=True)
    assert re.search(rf"failed deliveries since {one_format} queued again", text(done))


def test_list_actions_enable_disable_and_send_test(admin_client_, receiver, redis):
    first = Endpoint.objects.create(url=receiver.url("/a"))
    second = Endpoint.objects.create(url=receiver.url("/b"))
    ids = [first.pk, second.pk]
    admin_client_.post(ENDPOINTS, {"action": "disable", "_selected_action": ids})
    assert Endpoint.objects.filter(disabled_at__isnull=False).count() == 2
    response = admin_client_.post(
        ENDPOINTS, {"action": "send_test", "_selected_action": ids}, follow=True
    )
    assert "2 disabled or inactive endpoints skipped." in text(response)
    admin_client_.post(ENDPOINTS, {"action": "enable", "_selected_action": ids})
    assert Endpoint.objects.filter(disabled_at__isnull=True).count() == 2
    admin_client_.post(ENDPOINTS, {"action": "send_test", "_selected_action": ids})
    drain()
    assert sorted(r.path for r in receiver.requests) == ["/a", "/b"]


def test_list_actions_need_the_change_permission(viewer):
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/")
    event = Event.objects.create(type="order.paid", data={})
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, status="failed")
    call = InboundWebhook.objects.create(
        source="s", provider="standard", webhook_id="w", body=b"{}", status="failed"
    )
    for url, action, pk in [
        (ENDPOINTS, "disable", endpoint.pk),
        (ENDPOINTS, "send_test", endpoint.pk),
        (DELIVERIES, "retry", delivery.pk),
        (INBOUND, "reprocess", call.pk),
    ]:
        viewer.post(url, {"action": action, "_selected_action": [pk]})
    endpoint.refresh_from_db(), delivery.refresh_from_db(), call.refresh_from_db()
    assert endpoint.disabled_at is None and Event.objects.count() == 1
    assert delivery.status == "failed" and call.status == "failed"


# -- events, deliveries, inbound calls ---------------------------------------------------------


def test_the_event_list_summarises_deliveries_and_the_page_shows_the_payload(
    admin_client_, receiver, redis
):
    ok = Endpoint.objects.create(url=receiver.url("/ok"))
    Endpoint.objects.create(url=receiver.url("/down"))
    receiver.script("/down", *[Reply(500)] * 4)
    event = django_hooks.send_event("order.paid", {"id": 42, "note": "<b>bold</b>"})
    drain()
    listing = text(admin_client_.get(EVENTS))
    assert "1 succeeded" in listing and "1 failed" in listing
    page = text(admin_client_.get(f"{EVENTS}{event.pk}/change/"))
    assert (
        "&quot;id&quot;: 42" in page
        and "&lt;b&gt;bold&lt;/b&gt;" in page
        and "<b>bold</b>" not in page
    )
    assert receiver.url("/ok") in page and receiver.url("/down") in page
    assert_no_secret(admin_client_.get(f"{EVENTS}{event.pk}/change/"), ok)
    assert "order.paid" in text(admin_client_.get(EVENTS + "?type=order.paid"))


def test_the_delivery_page_lists_every_attempt_with_signatures_but_no_secrets(
    admin_client_, receiver, redis
):
    endpoint = Endpoint.objects.create(
        url=receiver.url(), headers={"Authorization": "Bearer s3cr3t-token"}
    )
    receiver.script(
        "/hook", Reply(503, headers={"X-Reason": "maintenance"}, body=b"come back later")
    )
    django_hooks.send_event("order.paid", {"id": 1})
    drain()
    delivery = Delivery.objects.get()
    assert delivery.attempts == 2
    response = admin_client_.get(f"{DELIVERIES}{delivery.pk}/change/")
    page = text(response)
    signatures = list(
        delivery.attempt_log.values_list("request_headers__webhook-signature", flat=True)
    )
    for signature in signatures:
        assert signature in page
    assert "s3cr3t-token" not in page and "[hidden]" in page
    assert (
        "come back later" in page and "maintenance" in page and ">503<" in page and ">200<" in page
    )
    assert_no_secret(response, endpoint)
    listing = text(admin_client_.get(DELIVERIES + f"?endpoint__id__exact={endpoint.pk}"))
    assert "order.paid" in listing and "succeeded" in listing


def test_retry_and_cancel_deliveries_from_the_list(admin_client_, receiver, redis):
    Endpoint.objects.create(url=receiver.url())
    receiver.script("/hook", *[Reply(500)] * 4)
    django_hooks.send_event("order.paid", {})
    drain()
    failed = Delivery.objects.get()
    assert failed.status == "failed"
    response = admin_client_.post(
        DELIVERIES, {"action": "retry", "_selected_action": [failed.pk]}, follow=True
    )
    assert "1 deliveries queued again." in text(response)
    drain()
    failed.refresh_from_db()
    assert failed.status == "succeeded" and failed.attempts == 5

    Endpoint.objects.update(is_active=False)
    django_hooks.send_event("order.paid", {})  # no receiving endpoint: nothing
    Endpoint.objects.update(is_active=True)
    django_hooks.send_event("order.paid", {})
    pending = Delivery.objects.get(status="pending")
    redis.flushdb()
    admin_client_.post(DELIVERIES, {"action": "cancel", "_selected_action": [pending.pk]})
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    assert "cancelled" in text(admin_client_.get(DELIVERIES + "?status=cancelled"))


def test_the_inbound_page_shows_headers_and_body_and_reprocess_runs_the_handler(
    admin_client_, redis
):
    from django_hooks.testing import run_worker
    from tests.testapp import views

    call = InboundWebhook.objects.create(
        source="shop",
        provider="standard",
        webhook_id="msg_r",
        event_type="order.paid",
        headers={"webhook-id": "msg_r"},
        body=b'{"type": "order.paid", "data": {"id": 7}}',
        payload={"type": "order.paid", "data": {"id": 7}},
        status="failed",
        error="boom",
        handler="tests.testapp.views:standard",
    )
    page = text(admin_client_.get(f"{INBOUND}{call.pk}/change/"))
    assert (
        "webhook-id" in page and "msg_r" in page and "&quot;id&quot;: 7" in page and "boom" in page
    )
    listing = text(admin_client_.get(INBOUND + "?provider=standard&status=failed"))
    assert "msg_r" in listing
    response = admin_client_.post(
        INBOUND, {"action": "reprocess", "_selected_action": [call.pk]}, follow=True
    )
    assert "1 inbound webhooks queued again." in text(response)
    run_worker()
    call.refresh_from_db()
    assert call.status == "processed"
    views.calls.clear()


def test_deleting_an_endpoint_summarises_and_batches_its_deliveries(
    admin_client_, django_assert_max_num_queries
):
    (endpoint,) = many_endpoints(1)
    event = Event.objects.create(type="order.paid", data={})
    Delivery.objects.bulk_create([Delivery(event=event, endpoint=endpoint) for _ in range(300)])
    with django_assert_max_num_queries(10):
        page = admin_client_.get(endpoint_url(endpoint, "delete"))
    assert page.status_code == 200
    assert "303 deliveries, with 3 attempts" in text(page) and text(page).count("<li>") < 20
    response = admin_client_.post(endpoint_url(endpoint, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
    assert not DeliveryAttempt.objects.exists() and Event.objects.count() == 2


def test_deleting_events_from_the_list_takes_their_deliveries(admin_client_):
    endpoints = many_endpoints(2)
    keep = Event.objects.create(type="order.paid", data={})
    Delivery.objects.create(event=keep, endpoint=endpoints[0])
    doomed = list(Event.objects.exclude(pk=keep.pk).values_list("pk", flat=True))
    confirm = admin_client_.post(EVENTS, {"action": "delete_selected", "_selected_action": doomed})
    assert "6 deliveries, with 6 attempts" in text(confirm)
    admin_client_.post(
        EVENTS, {"action": "delete_selected", "_selected_action": doomed, "post": "yes"}
    )
    assert list(Event.objects.values_list("pk", flat=True)) == [keep.pk]
    assert Delivery.objects.count() == 1 and not DeliveryAttempt.objects.exists()


def test_deleting_needs_the_delete_permission_for_deliveries_too():
    user = User.objects.create_user("deleter", "d@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_endpoint", "delete_endpoint"])
    )
    client = Client()
    client.force_login(user)
    (endpoint,) = many_endpoints(1)
    page = client.get(endpoint_url(endpoint, "delete"))
    assert "would require deleting the following protected" in text(page) or "delivery" in text(
        page
    )
    assert client.post(endpoint_url(endpoint, "delete"), {"post": "yes"}).status_code == 403
    assert Endpoint.objects.exists() and Delivery.objects.count() == 3
