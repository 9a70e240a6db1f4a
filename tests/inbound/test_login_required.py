"""Receivers work on a site that requires a login everywhere else (``LoginRequiredMiddleware``)."""

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from tests.inbound.test_decorator import standard_post
from tests.inbound.test_operations import github_post
from tests.testapp import views

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def members_only(request):
    return HttpResponse("for members")


urlpatterns = [
    path("members/", members_only),
    path("hooks/standard/", views.standard),
    path("hooks/api-github/", views.GitHubAPIHook.as_view()),
    path("hooks/in/", include("django_hooks.inbound.urls")),
]

LOGIN_REQUIRED = override_settings(
    MIDDLEWARE=[*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"],
    LOGIN_URL="/login/",
)


@pytest.fixture(autouse=True)
def fresh_calls():
    views.calls.clear()
    yield
    views.calls.clear()


@LOGIN_REQUIRED
def test_the_middleware_is_on():
    response = Client().get("/members/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@LOGIN_REQUIRED
def test_a_decorated_receiver_is_not_sent_to_the_login_page():
    response = standard_post(Client(enforce_csrf_checks=True), "/hooks/standard/")
    assert response.status_code == 204 and len(views.calls) == 1


@LOGIN_REQUIRED
def test_a_receiver_from_the_inbound_setting_is_not_sent_to_the_login_page():
    receiver = {"provider": "standard", "secret": views.SECRET}
    inbound = {"shop": {**receiver, "handler": "tests.testapp.views.on_configured"}}
    with override_settings(DJANGO_HOOKS={"INBOUND": inbound}):
        response = standard_post(Client(enforce_csrf_checks=True), "/hooks/in/shop/")
        assert response.status_code == 204
        # An unknown source is this app's JSON 404, not a login redirect either.
        assert Client().post("/hooks/in/nope/").status_code == 404


@LOGIN_REQUIRED
def test_a_drf_receiver_is_not_sent_to_the_login_page():
    """A regression guard: DRF already exempts its own views from the login middleware, so this
    passes without our marking too; it fails if that ever stops being true."""
    response = github_post(Client(enforce_csrf_checks=True), "/hooks/api-github/", event="push")
    assert response.status_code == 200 and response.json()["type"] == "push"
    # A bad signature is DRF's 401, still not a login redirect.
    assert github_post(Client(), "/hooks/api-github/", secret="wrong").status_code == 401
