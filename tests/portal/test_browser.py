"""The customer portal in a real Chromium, against the example shop served on 127.0.0.1 with a
real RQ worker and a real receiver: a customer logs in, creates an endpoint from the catalogue,
reveals its secret, sends a test event and sees it delivered, retries a failed delivery, filters
the log, recovers, rotates the secret, disables, enables, edits and deletes; another customer's
signed link opens the portal in the shop's account page (an iframe) and never shows the first
customer's anything. Screenshots of the pages go to test-artifacts/portal-*.png.

Uses the admin browser test's site and browser (skipped the same way without Chromium).
"""

from __future__ import annotations

import json
import re
import time

import pytest
from standardwebhooks.webhooks import Webhook

# Importing it skips this module too when there is no Chromium; its fixtures serve both.
from tests.admin.test_browser import ARTIFACTS, browser_page, site  # noqa: F401
from tests.receiver import Reply

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover  (the import above has skipped the module already)
    expect = None

pytestmark = pytest.mark.slow

CUSTOMERS = """
import json
from django_hooks.models import Endpoint
from django_hooks.portal import signed_link
from shop.example_site import reset_password, set_up_customers
accounts = set_up_customers("{site}")
out = {{"password": reset_password("acme")}}
for customer, endpoint in accounts:
    out[customer.slug] = {{"endpoint": endpoint.pk, "link": signed_link(customer, expires_in=600)}}
print(json.dumps(out))
"""

ACME_DELIVERY = """
import django_hooks, json
from django_hooks.models import Delivery
from shop.models import Customer
event = django_hooks.send_event("order.updated", {{"id": 7}}, owner=Customer.objects.get(slug="{slug}"))
print(json.dumps(list(Delivery.objects.filter(event=event).values_list("pk", flat=True))))
"""


def reload_until(page, url: str, locator: str, text: str, timeout: float = 30) -> None:
    """Reload ``url`` until ``locator`` shows ``text`` (the worker runs in another process)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if text in page.locator(locator).inner_text():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{locator} never showed {text!r} at {url}")
        time.sleep(0.3)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)


def test_the_portal_in_a_real_browser(site, browser_page, receiver):  # noqa: F811
    page = browser_page
    accounts = json.loads(
        site.manage("shell", "-c", CUSTOMERS.format(site=site.url)).splitlines()[-1]
    )
    portal = f"{site.url}/webhooks/"

    # Behind the shop's own login.
    page.goto(portal)
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/webhooks/"))
    page.fill("#id_username", "acme")
    page.fill("#id_password", accounts["password"])
    page.click("input[type=submit]")
    expect(page).to_have_url(portal)
    expect(page.locator("#endpoints")).to_contain_text("/receiver/acme/webhooks/")
    shot(page, "endpoints")

    # Create an endpoint from the catalogue (descriptions and schemas shown), keyboard only.
    page.get_by_role("link", name="Add an endpoint").click()
    expect(page.locator("#event-types")).to_contain_text("A customer placed an order.")
    page.locator("#event-types summary").first.click()
    expect(page.locator("#event-types pre").first).to_contain_text('"customer_email"')
    shot(page, "new-endpoint")
    page.fill("#id_url", "http://169.254.169.254/")
    page.click("button[type=submit]")
    expect(page.locator("#id_url_error")).to_contain_text("metadata address")
    expect(page.locator("#id_url")).to_have_attribute("aria-invalid", "true")
    page.fill("#id_url", receiver.url("/portal"))
    page.fill("#id_description", "Our order system")
    page.get_by_label("order.created").check()
    page.fill("#id_other_types", "order.updated")
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_contain_text("Endpoint created.")
    endpoint_url = page.url.split("?")[0]
    endpoint_id = int(endpoint_url.rstrip("/").split("/")[-1])

    # Reveal the secret: confirmation first, then a page that is never stored.
    page.get_by_role("link", name="Reveal the secret").click()
    expect(page.locator("h1")).to_contain_text("Reveal the signing secret?")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Reveal the secret')")
    assert "no-store" in posted.value.headers["cache-control"]
    secret = page.inner_text("#secret").strip()
    assert secret.startswith("whsec_")

    # Send a test event; see it delivered, with its attempt.
    page.goto(endpoint_url)
    page.get_by_role("link", name="Send a test event").click()
    page.select_option("#id_event_type", "order.created")
    page.click("button:has-text('Send the test event')")
    expect(page.locator(".notice")).to_contain_text("Test event sent.")
    delivery_url = page.url.split("?")[0]
    reload_until(page, delivery_url, "#delivery-summary", "succeeded")
    expect(page.locator("#attempt-1")).to_contain_text("200")
    shot(page, "delivery")
    (first,) = receiver.to("/portal")
    assert Webhook(secret).verify(first.body, first.headers)["type"] == "order.created"

    # A failed delivery (no retries in these settings), retried from its page.
    receiver.script("/portal", Reply(500, body=b"down for maintenance"))
    page.goto(endpoint_url + "test/")
    page.click("button:has-text('Send the test event')")
    failed_url = page.url.split("?")[0]
    reload_until(page, failed_url, "#delivery-summary", "failed")
    expect(page.locator("#attempt-1")).to_contain_text("down for maintenance")
    page.click("button:has-text('Retry this delivery')")
    expect(page.locator(".notice")).to_contain_text("Delivery queued again.")
    reload_until(page, failed_url, "#delivery-summary", "succeeded")
    expect(page.locator("#attempt-2")).to_contain_text("200")

    # The log, filtered by status and by event type.
    page.goto(endpoint_url + "deliveries/")
    assert page.locator("#deliveries tbody tr").count() == 2  # order.created, webhook.test
    page.select_option("#id_status", "failed")
    page.click("button:has-text('Filter')")
    expect(page.locator("#no-deliveries")).to_contain_text("match these filters")
    page.select_option("#id_status", "succeeded")
    page.fill("#id_event_type", "order.*")
    page.click("button:has-text('Filter')")
    expect(page.locator("#deliveries tbody")).to_contain_text("order.created")
    assert page.locator("#deliveries tbody tr").count() == 1
    shot(page, "deliveries")

    # Recover failures since a time (there are none left).
    page.goto(endpoint_url + "recover/")
    page.click("button:has-text('Recover failed deliveries')")
    expect(page.locator(".notice")).to_contain_text("0 failed deliveries queued again.")

    # Health: the 24 h figures and the chart.
    page.goto(endpoint_url)
    expect(page.locator("#health")).to_contain_text("2 delivered")
    assert page.locator("#health svg g rect").count() == 96
    shot(page, "endpoint")

    # Rotate: the new secret signs the next webhook, the old one still alongside.
    page.get_by_role("link", name="Rotate the secret").click()
    page.click("button:has-text('Rotate the secret')")
    new_secret = page.inner_text("#secret").strip()
    assert new_secret.startswith("whsec_") and new_secret != secret
    page.goto(endpoint_url)
    assert secret not in page.content() and new_secret not in page.content()
    page.goto(endpoint_url + "test/")
    page.click("button:has-text('Send the test event')")
    deadline = time.monotonic() + 20
    while len(receiver.to("/portal")) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    latest = receiver.to("/portal")[-1]
    Webhook(new_secret).verify(latest.body, latest.headers)
    Webhook(secret).verify(latest.body, latest.headers)

    # Disable, enable, edit.
    page.goto(endpoint_url)
    page.click("button:has-text('Disable')")
    expect(page.locator("#health")).to_contain_text("Disabled by you.")
    page.click("button:has-text('Enable')")
    expect(page.locator("#health")).to_contain_text("Receiving")
    page.get_by_role("link", name="Edit", exact=True).click()
    page.fill("#id_description", "Renamed")
    page.click("button:has-text('Save changes')")
    expect(page.locator("main")).to_contain_text("Renamed")

    # Receiver credentials and a custom header: sent with the next webhook, never shown again.
    page.get_by_role("link", name="Change credentials and headers").click()
    page.select_option("#id_credentials_kind", "bearer")
    page.locator("#credentials summary", has_text="Bearer token").click()
    page.fill("#id_credentials_token", "tok_browser_Gh7Jk8Lm9")
    page.fill("#id_new_0_name", "X-Api-Key")
    page.fill("#id_new_0_value", "key_browser_Qw1Er2Ty3")
    page.click("button:has-text('Save credentials and headers')")
    expect(page.locator(".notice")).to_contain_text("Credentials and headers saved")
    expect(page.locator("#receiver-credentials")).to_contain_text("Bearer token")
    page.get_by_role("link", name="Change credentials and headers").click()
    expect(page.locator("#headers")).to_contain_text("X-Api-Key")
    shot(page, "credentials")
    assert "tok_browser" not in page.content() and "key_browser" not in page.content()
    page.goto(endpoint_url + "test/")
    page.click("button:has-text('Send the test event')")
    deadline = time.monotonic() + 20
    while len(receiver.to("/portal")) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    sent = {k.lower(): v for k, v in receiver.to("/portal")[-1].headers.items()}
    assert sent["authorization"] == "Bearer tok_browser_Gh7Jk8Lm9"
    assert sent["x-api-key"] == "key_browser_Qw1Er2Ty3"

    # The reference pages.
    page.get_by_role("link", name="Event types", exact=True).click()
    expect(page.locator("main")).to_contain_text("order.created")
    page.get_by_role("link", name="Verifying webhooks").click()
    expect(page.locator("#node")).to_contain_text("standardwebhooks")
    shot(page, "verify")

    # Narrow screens: nothing wider than the viewport.
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(endpoint_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.set_viewport_size({"width": 1440, "height": 900})

    # Globex's signed link: Globex's endpoints, and a 404 for anything of Acme's.
    globex = accounts["globex"]
    theirs = json.loads(
        site.manage("shell", "-c", ACME_DELIVERY.format(slug="acme")).splitlines()[-1]
    )
    page.context.clear_cookies()  # from no cookies at all: no shop login
    other = page.context.new_page()
    other.goto(site.url + globex["link"])
    expect(other).to_have_url(portal)
    expect(other.locator("#endpoints")).to_contain_text("/receiver/globex/webhooks/")
    assert "/receiver/acme/" not in other.content()
    for path in (
        f"{endpoint_id}/",
        f"{accounts['acme']['endpoint']}/deliveries/",
        f"deliveries/{theirs[0]}/",
        f"{endpoint_id}/secret/",
    ):
        response = other.goto(portal + path)
        assert response.status == 404, path
        assert "/receiver/acme/" not in other.content() and "Not found" in other.content()
    # Nothing else of the site: the link logged nobody in.
    other.goto(site.url + "/admin/")
    expect(other).to_have_url(re.compile(r"/admin/login/"))

    # The account page embeds the portal through a signed link of its own.
    page.context.clear_cookies()
    page.goto(site.url + "/accounts/login/?next=/account/webhooks/")
    page.fill("#id_username", "acme")
    page.fill("#id_password", accounts["password"])
    page.click("input[type=submit]")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#endpoints")).to_contain_text("/receiver/acme/webhooks/")
    shot(page, "embedded")
    frame.get_by_role("link", name="Add an endpoint").click()
    frame.locator("#id_url").fill(receiver.url("/framed"))
    frame.locator("button[type=submit]").click()
    expect(frame.locator(".notice")).to_contain_text("Endpoint created.")

    # Delete, after confirming.
    page.goto(endpoint_url + "delete/")
    page.click("button:has-text('Delete the endpoint')")
    expect(page.locator(".notice")).to_contain_text("Endpoint deleted")
    assert receiver.url("/portal") not in page.inner_text("main")
