"""``api/hooks/`` itself: an API root linking every route, scoped like them; and the system
check that catches the API's URLs without ``rest_framework`` in ``INSTALLED_APPS``."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import checks
from django.template import TemplateDoesNotExist
from django.test import override_settings
from django.urls import include, path
from rest_framework.test import APIClient

from django_hooks.api.schema import SPECTACULAR
from django_hooks.checks import check_api_prerequisites
from tests.api.conftest import API

pytestmark = pytest.mark.django_db

LINKS = {"endpoints", "event-types", "events", "events/feed", "events/stream", "deliveries"}
WITHOUT_DRF = [app for app in settings.INSTALLED_APPS if app != "rest_framework"]


def test_the_root_links_every_list_route(as_alice):
    response = as_alice.get(API)
    assert response.status_code == 200
    links = response.json()
    assert set(links) == LINKS | ({"schema"} if SPECTACULAR else set())
    assert links["endpoints"] == "http://testserver/api/hooks/endpoints/"
    assert links["events/feed"] == "http://testserver/api/hooks/events/feed/"
    with override_settings(DJANGO_HOOKS={"FEED_STREAM_LIFETIME": 0}):
        for name, url in links.items():
            assert as_alice.get(url).status_code == 200, name


def test_the_root_is_refused_without_an_owner(alice, as_alice):
    assert APIClient().get(API).status_code in (401, 403)
    nobody = {"API_OWNER": "tests.api.test_authorization.nobody"}
    with override_settings(DJANGO_HOOKS=nobody):
        assert as_alice.get(API).status_code == 403


def test_the_root_keeps_the_projects_permissions(as_alice):
    admins_only = {"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"]}
    with override_settings(REST_FRAMEWORK=admins_only):
        assert as_alice.get(API).status_code == 403


def test_the_browsable_root_renders_with_rest_framework_installed(as_alice):
    page = as_alice.get(API, HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"/api/hooks/endpoints/" in page.content


def test_without_rest_framework_the_browsable_api_fails_as_the_docs_say(as_alice):
    with override_settings(INSTALLED_APPS=WITHOUT_DRF):
        assert as_alice.get(API + "endpoints/").status_code == 200  # JSON still works
        with pytest.raises(TemplateDoesNotExist, match="rest_framework/api.html"):
            as_alice.get(API + "endpoints/", HTTP_ACCEPT="text/html")


class NestedURLs:
    """A URLconf that includes the API two levels down."""

    urlpatterns = [path("v1/", include([path("hooks/", include("django_hooks.api.urls"))]))]


class NoAPIURLs:
    urlpatterns = [path("hooks/in/", include("django_hooks.inbound.urls"))]


def warnings(**overrides):
    with override_settings(**overrides):
        return check_api_prerequisites()


def test_the_check_warns_when_the_api_is_included_without_rest_framework():
    [warning] = warnings(INSTALLED_APPS=WITHOUT_DRF)
    assert warning.id == "django_hooks.W003" and warning.level == checks.WARNING
    assert "'rest_framework' is not in INSTALLED_APPS" in warning.msg
    assert "django_hooks.api.urls" in warning.msg
    assert 'Add "rest_framework" to INSTALLED_APPS' in warning.hint
    assert "TemplateDoesNotExist" in warning.hint
    assert [w.id for w in warnings(INSTALLED_APPS=WITHOUT_DRF, ROOT_URLCONF=NestedURLs)] == [
        "django_hooks.W003"
    ]


def test_the_check_is_quiet_with_rest_framework_or_without_the_api():
    assert warnings() == []
    assert warnings(INSTALLED_APPS=WITHOUT_DRF, ROOT_URLCONF=NoAPIURLs) == []


def test_the_check_runs_with_djangos_url_checks():
    assert check_api_prerequisites in checks.registry.registry.get_checks()
    with override_settings(INSTALLED_APPS=WITHOUT_DRF):
        found = checks.run_checks(tags=[checks.Tags.urls])
    assert "django_hooks.W003" in [message.id for message in found]


def documented_token_settings():
    """The settings block of docs/api.md's "Before you start", run as a project would."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    block = next(b for b in page.split("```python")[1:] if "rest_framework.authtoken" in b)
    namespace = {"INSTALLED_APPS": ["django.contrib.auth", "django_hooks"]}
    exec(block.split("```")[0], namespace)  # noqa: S102  (our own docs page)
    return namespace


def test_the_documented_token_setup_authenticates_the_api(alice):
    import io

    from django.core.management import call_command

    documented = documented_token_settings()
    # tests.settings installs the documented apps (the token table comes from migrate).
    assert set(documented["INSTALLED_APPS"]) <= set(settings.INSTALLED_APPS)
    token_header = {"HTTP_AUTHORIZATION": "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}
    assert APIClient(**token_header).get(API + "endpoints/").status_code in (401, 403)
    with override_settings(REST_FRAMEWORK=documented["REST_FRAMEWORK"]):
        out = io.StringIO()
        call_command("drf_create_token", "alice", stdout=out)
        assert out.getvalue().startswith("Generated token ")
        token = out.getvalue().split()[2]
        client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
        assert client.get(API + "endpoints/").status_code == 200
        assert client.get(API).json()["endpoints"] == "http://testserver/api/hooks/endpoints/"
        wrong = APIClient(HTTP_AUTHORIZATION="Token " + "0" * 40)
        assert wrong.get(API + "endpoints/").status_code == 401
