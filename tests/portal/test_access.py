"""Who gets in and what they see: every route × every method × both ways in. Another owner's
object is a 404 whatever the way in; every POST needs the CSRF token of its way in; a signed link
opens the portal alone, for one owner, for a while."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings

from django_hooks.models import Delivery, Endpoint, Event
from django_hooks.portal import access, signed_link
from tests.portal.conftest import (
    PORTAL,
    ROUTES,
    csrf_token_of,
    logged_in,
    make_endpoint,
    owned_objects,
    through_link,
)
from tests.testapp.models import Organization

pytestmark = pytest.mark.django_db

BODY = {
    "url": "https://example.com/changed",
    "event_type": "webhook.test",
    "since": "2020-01-01T00:00",
    # What the credentials page would write: another owner's endpoint must not get it.
    "credentials_kind": "bearer",
    "credentials_token": "tok_planted_Hj6Kl7",
    "new_0_name": "X-Planted",
    "new_0_value": "planted",
}
POSTS = [(route, kind) for route, methods, kind in ROUTES if "post" in methods]


def test_the_matrix_names_every_route():
    from django_hooks.portal.urls import urlpatterns

    served = {str(p.pattern) for p in urlpatterns} - {"link/<str:token>/"}
    assert len(served) == len(ROUTES)


def state():
    """Everything a request could change."""
    endpoints = list(
        Endpoint.objects.order_by("pk").values_list(
            "pk",
            "url",
            "is_active",
            "disabled_at",
            "secret_ciphertext",
            "auth_ciphertext",
            "headers",
        )
    )
    deliveries = list(Delivery.objects.order_by("pk").values_list("pk", "status"))
    return endpoints, deliveries, Event.objects.count()


def way_in(how, user):
    return logged_in(user) if how == "login" else through_link(user)


@pytest.mark.parametrize("how", ["login", "link"])
@pytest.mark.parametrize(("route", "methods", "kind"), [r for r in ROUTES if r[2]])
def test_another_owners_objects_are_404_by_every_route_and_method(
    how, route, methods, kind, alice, bob
):
    mine, theirs = owned_objects(alice), owned_objects(bob)
    client = way_in(how, alice)
    token = csrf_token_of(client.get(PORTAL + "new/"))
    before = state()
    for method in methods:
        url = PORTAL + route.format(id=theirs[kind])
        if method == "post":
            response = client.post(url, {**BODY, "csrfmiddlewaretoken": token})
        else:
            response = client.get(url)
        assert response.status_code == 404, (method, url, response.content[:500])
        html = response.content.decode()
        assert f"127.0.0.1:9/{bob.pk}" not in html and theirs["event"] not in html
    assert state() == before
    # The same route with alice's own object answers (the 404 above is about owners).
    assert client.get(PORTAL + route.format(id=mine[kind])).status_code in (200, 405)


@pytest.mark.parametrize("how", ["login", "link"])
def test_lists_show_only_the_owners_own(how, alice, bob):
    mine, theirs = owned_objects(alice), owned_objects(bob)
    client = way_in(how, alice)
    for path in ("", f"{mine['endpoint']}/deliveries/", f"deliveries/{mine['delivery']}/"):
        html = client.get(PORTAL + path).content.decode()
        assert f"127.0.0.1:9/{bob.pk}" not in html and theirs["event"] not in html


def test_a_missing_id_and_an_absurd_one_are_404_too(as_alice):
    assert as_alice.get(PORTAL + "999999/").status_code == 404
    assert as_alice.get(PORTAL + "9" * 30 + "/").status_code == 404  # never reaches the database


# -- CSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "kind"), POSTS)
def test_every_post_behind_the_login_needs_the_sites_csrf_token(route, kind, alice):
    ids = owned_objects(alice)
    client = logged_in(alice, enforce_csrf_checks=True)
    url = PORTAL + route.format(id=ids.get(kind, ""))
    before = state()
    assert client.post(url, BODY).status_code == 403
    assert client.post(url, {**BODY, "csrfmiddlewaretoken": "x" * 64}).status_code == 403
    assert state() == before
    token = csrf_token_of(client.get(PORTAL + "new/"))
    assert client.post(url, {**BODY, "csrfmiddlewaretoken": token}).status_code != 403


@pytest.mark.parametrize(("route", "kind"), POSTS)
def test_every_post_through_a_link_needs_the_portal_sessions_token(route, kind, alice):
    ids = owned_objects(alice)
    client = through_link(alice, enforce_csrf_checks=True)
    url = PORTAL + route.format(id=ids.get(kind, ""))
    before = state()
    response = client.post(url, BODY)
    assert response.status_code == 403 and "Form expired" in response.content.decode()
    # Another session's token is no good either.
    other = csrf_token_of(through_link(alice).get(PORTAL + "new/"))
    assert client.post(url, {**BODY, "csrfmiddlewaretoken": other}).status_code == 403
    assert state() == before
    token = csrf_token_of(client.get(PORTAL + "new/"))
    assert client.post(url, {**BODY, "csrfmiddlewaretoken": token}).status_code != 403


# -- the host's login -------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_sites_login():
    response = Client().get(PORTAL + "new/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/webhooks/new/"


def no_owner(request):
    return None


def organization_of(request):
    return Organization.objects.filter(name=request.user.username).first()


def test_an_account_without_an_owner_is_refused(as_alice):
    with override_settings(DJANGO_HOOKS={"API_OWNER": "tests.portal.test_access.no_owner"}):
        response = as_alice.get(PORTAL)
    assert response.status_code == 403
    assert "This account cannot manage webhooks." in response.content.decode()


def test_the_owner_is_api_owners(as_alice, alice):
    acme = Organization.objects.create(name="alice")
    make_endpoint(acme, url="https://acme.example/hooks")
    make_endpoint(alice, url="https://alice.example/hooks")
    with override_settings(DJANGO_HOOKS={"API_OWNER": "tests.portal.test_access.organization_of"}):
        html = as_alice.get(PORTAL).content.decode()
    assert "acme.example" in html and "alice.example" not in html


# -- signed links -----------------------------------------------------------------------------


def test_a_signed_link_opens_the_portals_own_session(alice):
    make_endpoint(alice, url="https://alice.example/hooks")
    link = signed_link(alice, expires_in=60)
    assert link.startswith("/webhooks/link/")
    client = Client()
    response = client.get(link)
    assert response.status_code == 303 and response["Location"] == "/webhooks/"
    assert response["Referrer-Policy"] == "no-referrer"
    cookie = response.cookies[access.COOKIE_NAME]
    assert cookie["path"] == "/webhooks/" and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "alice.example" in client.get(PORTAL).content.decode()
    # Nothing else of the site: the session logs nobody in.
    assert "_auth_user_id" not in client.session
    assert client.get("/api/hooks/endpoints/").status_code == 403
    assert client.get("/admin/").status_code == 302


def test_over_https_the_cookie_can_travel_into_a_cross_site_frame(alice):
    response = Client().get(signed_link(alice), secure=True)
    cookie = response.cookies[access.COOKIE_NAME]
    assert cookie["secure"] and cookie["samesite"] == "None"


@pytest.mark.parametrize("tamper", ["expired", "forged", "other-salt", "deleted-owner"])
def test_a_bad_link_opens_nothing(tamper, alice, bob, monkeypatch):
    link = signed_link(alice, expires_in=60)
    if tamper == "expired":
        monkeypatch.setattr(time, "time", lambda real=time.time: real() + 61)
    elif tamper == "forged":
        link = link[:-3] + ("AAA" if not link.endswith("AAA/") else "BBB") + "/"
    elif tamper == "other-salt":
        from django.core import signing

        token = signing.dumps({"o": [1, str(bob.pk)], "e": int(time.time()) + 60})
        link = f"/webhooks/link/{token}/"
    else:
        alice.delete()
    client = Client()
    response = client.get(link)
    assert (
        response.status_code == 403 and "has expired or is not valid" in response.content.decode()
    )
    assert access.COOKIE_NAME not in response.cookies
    assert client.get(PORTAL).status_code == 302  # still nobody: off to the site's login


def test_the_session_ends_after_portal_session_age(alice, monkeypatch):
    with override_settings(DJANGO_HOOKS={"PORTAL_SESSION_AGE": 120}):
        client = through_link(alice)
        assert client.get(PORTAL).status_code == 200
        monkeypatch.setattr(time, "time", lambda real=time.time: real() + 121)
        response = client.get(PORTAL)
    assert response.status_code == 403 and "session has ended" in response.content.decode()


def test_a_forged_session_cookie_is_nobody(alice, bob):
    client = through_link(alice)
    value = client.cookies[access.COOKIE_NAME].value
    client.cookies[access.COOKIE_NAME] = value.replace(value[5], "A" if value[5] != "A" else "B")
    assert client.get(PORTAL).status_code == 403


def test_a_link_is_for_one_owner_whoever_is_logged_in(alice, bob):
    make_endpoint(bob, url="https://bob.example/hooks")
    client = logged_in(alice)
    client.get(signed_link(bob))
    html = client.get(PORTAL).content.decode()
    assert "bob.example" in html


def test_link_lifetimes_are_bounded(alice):
    for bad in (0, -1, 8 * 24 * 3600):
        with pytest.raises(ValueError, match="expires_in"):
            signed_link(alice, expires_in=bad)
    with pytest.raises(ValueError, match="saved"):
        signed_link(Organization(name="unsaved"))


FRAMING = [
    *(m for m in __import__("tests.settings", fromlist=["MIDDLEWARE"]).MIDDLEWARE),
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


@override_settings(MIDDLEWARE=FRAMING)
def test_only_link_pages_may_be_framed_and_only_by_the_setting(alice):
    response = logged_in(alice).get(PORTAL)
    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert response["X-Frame-Options"] == "DENY"
    response = through_link(alice).get(PORTAL)
    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert response["X-Frame-Options"] == "DENY"
    with override_settings(DJANGO_HOOKS={"PORTAL_FRAME_ANCESTORS": ["https://app.example.com"]}):
        response = through_link(alice).get(PORTAL)
        assert (
            response["Content-Security-Policy"] == "frame-ancestors 'self' https://app.example.com"
        )
        assert "X-Frame-Options" not in response
        response = logged_in(alice).get(PORTAL)  # behind the login: the site's own rules
        assert response["Content-Security-Policy"] == "frame-ancestors 'self'"
