"""The OpenAPI schema, and a bounded schemathesis run against it: no 5xx, no response that
breaks the schema, whatever the generated input."""

from __future__ import annotations

import base64

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import override_settings

import django_hooks
from django_hooks.api import feed
from django_hooks.api.schema import SPECTACULAR
from tests.api.conftest import API

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db

SCHEMA_URL = API + "schema/?format=json"
#: The schema comes from the `openapi` extra; tox's `base` env runs without it.
needs_spectacular = pytest.mark.skipif(not SPECTACULAR, reason="drf-spectacular not installed")


@needs_spectacular
def test_the_schema_documents_every_route(client):
    schema = client.get(SCHEMA_URL).json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Webhooks API"
    paths = set(schema["paths"])
    assert "/api/hooks/endpoints/{id}/rotate-secret/" in paths
    assert "/api/hooks/events/feed/" in paths
    assert not any(path.startswith("/admin") or "/hooks/in/" in path for path in paths)
    stream = schema["paths"]["/api/hooks/events/stream/"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]


def test_without_drf_spectacular_the_schema_route_names_the_extra(monkeypatch, rf):
    from django_hooks.api import schema

    monkeypatch.setattr(schema, "SPECTACULAR", False)
    response = schema.schema_view()(rf.get("/"))
    assert response.status_code == 404
    assert 'pip install \\"django-hooks[openapi]\\"' in response.content.decode()


@pytest.mark.skipif(SPECTACULAR, reason="drf-spectacular installed")
def test_the_schema_route_without_the_openapi_extra_names_it(client):
    response = client.get(SCHEMA_URL)
    assert response.status_code == 404
    assert "django-hooks[openapi]" in response.json()["detail"]


FAST = {
    "ALLOWED_NETWORKS": ["127.0.0.0/8"],
    "FEED_STREAM_LIFETIME": 0,
}


@pytest.fixture
def wsgi_app(django_user_model, monkeypatch):
    """Our WSGI application with a user and data, kept inside the test's transaction."""
    from django.core.wsgi import get_wsgi_application

    # As Django's test client does: a request's end must not close the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # Long polls end at once: the generated ``wait`` values are valid but would take 30 s.
    original = feed.Feed.wait
    monkeypatch.setattr(
        feed.Feed,
        "wait",
        lambda self, after="", limit=100, timeout=0: original(
            self, after, limit, min(timeout, 0.01)
        ),
    )
    user = django_user_model.objects.create_user("schemathesis", password="pw")
    django_hooks.send_event("order.paid", {"id": 1}, owner=user)
    try:
        with override_settings(
            DJANGO_HOOKS=FAST, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
        ):
            user.set_password("pw")
            user.save()
            yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


AUTH = {"Authorization": "Basic " + base64.b64encode(b"schemathesis:pw").decode()}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
@needs_spectacular
def test_the_api_conforms_to_its_schema(wsgi_app, mode):
    api = schemathesis.openapi.from_wsgi(SCHEMA_URL, wsgi_app)
    generation_mode = schemathesis.GenerationMode(mode)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 22  # every route and method

    checked = 0
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=generation_mode))
        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        def conforms(case):
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        try:
            conforms()
        except Unsatisfiable:
            assert mode == "negative"  # an operation with no input that could be invalid
            continue
        checked += 1
    # Negative mode skips operations whose every input accepts anything (e.g. a bare {id}).
    assert checked == len(operations) if mode == "positive" else checked >= 10
