"""Issue 15, item 9: when a receiver's secret is chosen per request, duplicates are detected per
tenant, so one tenant cannot pre-store an id to have another tenant's genuine call dropped."""

from __future__ import annotations

import pytest
from django.test import Client

from django_hooks.inbound import TenantSecret
from django_hooks.inbound.decorators import secrets_fingerprint
from django_hooks.models import InboundWebhook
from tests.inbound.test_decorator import standard_post
from tests.testapp import views

pytestmark = pytest.mark.django_db

ACME, GLOBEX = views.TENANT_SECRETS["acme"], views.TENANT_SECRETS["globex"]


@pytest.fixture(autouse=True)
def _calls():
    views.calls.clear()


def test_one_tenant_cannot_pre_store_an_id_another_tenant_will_send():
    client = Client()
    # acme's own secret signs a call carrying the id globex's sender will use next.
    planted = standard_post(client, "/hooks/tenants/?tenant=acme", msg_id="msg_1", secret=ACME[0])
    assert planted.status_code == 204
    genuine = standard_post(
        client, "/hooks/tenants/?tenant=globex", msg_id="msg_1", secret=GLOBEX[0]
    )
    assert genuine.status_code == 204  # handled, not "duplicate"
    assert [(call.id, call.tenant) for call in views.calls] == [
        ("msg_1", "acme"),
        ("msg_1", "globex"),
    ]
    assert sorted(InboundWebhook.objects.values_list("tenant", "webhook_id")) == [
        ("acme", "msg_1"),
        ("globex", "msg_1"),
    ]


def test_a_tenants_own_repeat_is_still_a_duplicate_across_its_rotation():
    client = Client()
    first = standard_post(client, "/hooks/tenants/?tenant=acme", msg_id="msg_2", secret=ACME[1])
    assert first.status_code == 204
    # The grace period ended: only the new secret is live, and the sender retries with it.
    again = standard_post(
        client, "/hooks/tenants/?tenant=acme&only=1", msg_id="msg_2", secret=ACME[0]
    )
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert len(views.calls) == 1


def test_a_plain_secret_callable_scopes_duplicates_by_the_secret_it_chose():
    client = Client()
    planted = standard_post(
        client, f"/hooks/by-tenant/?key={views.OLD_SECRET}", msg_id="msg_3", secret=views.OLD_SECRET
    )
    assert planted.status_code == 204
    genuine = standard_post(
        client, f"/hooks/by-tenant/?key={views.SECRET}", msg_id="msg_3", secret=views.SECRET
    )
    assert genuine.status_code == 204
    assert len(views.calls) == 2
    stored = set(InboundWebhook.objects.values_list("tenant", flat=True))
    assert stored == {secrets_fingerprint([views.SECRET]), secrets_fingerprint([views.OLD_SECRET])}
    assert all(tenant.startswith("secret:") for tenant in stored)
    assert not any(views.SECRET.removeprefix("whsec_") in tenant for tenant in stored)


def test_a_fixed_secret_has_one_namespace():
    assert standard_post(Client(), "/hooks/standard/", msg_id="msg_4").status_code == 204
    assert InboundWebhook.objects.get().tenant == ""
    assert views.calls[0].tenant == ""


def test_a_tenant_secret_without_a_tenant_is_a_misconfiguration():
    response = standard_post(Client(), "/hooks/tenants/?tenant=nameless", secret=ACME[0])
    assert (response.status_code, response.json()) == (500, {"error": "receiver misconfigured"})
    assert not InboundWebhook.objects.exists()


def test_a_tenant_secret_never_shows_its_secret():
    assert repr(TenantSecret(ACME, tenant="acme")) == "TenantSecret(tenant='acme')"


def test_a_stored_call_run_again_keeps_its_tenant():
    from django_hooks.inbound.decorators import stored_call

    standard_post(Client(), "/hooks/tenants/?tenant=globex", msg_id="msg_5", secret=GLOBEX[0])
    assert stored_call(InboundWebhook.objects.get(), None).tenant == "globex"
