"""SSRF: every corpus URL is refused when an endpoint is saved (code, admin) and when delivered.

The API save path reuses ``tests.security.corpus`` (see its docstring) once the API exists.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import override_settings

import django_hooks
from django_hooks.core.credentials import OAuth2ClientCredentials
from django_hooks.models import Delivery, Endpoint
from django_hooks.outbound import client
from django_hooks.testing import run_worker
from tests.receiver import Receiver, Reply
from tests.security.corpus import (
    PUBLIC_V4,
    SSRF_CASES,
    FakeDNS,
    SSRFCase,
    assert_refused_page,
    assert_refused_response,
    refusing_ssrf,
)

pytestmark = pytest.mark.django_db

SAFE_URL = "http://public.attacker.test/hook"  # resolves to a public address in FakeDNS


@pytest.fixture(scope="module")
def port():
    """A listening receiver shared by the save-time tests (stopping one takes half a second):
    any request reaching it fails the module."""
    server = Receiver()
    yield server.port
    server.close()
    assert server.requests == []


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(SSRF_CASES) >= 40
    assert len({case.url for case in SSRF_CASES}) == len(SSRF_CASES)


# -- saving: code ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SSRF_CASES, ids=str)
def test_create_refuses(case: SSRFCase, port) -> None:
    with refusing_ssrf(), pytest.raises(ValidationError) as excinfo:
        Endpoint.objects.create(url=case.at(port))
    assert any(case.reason.lower() in m.lower() for m in excinfo.value.message_dict["url"])
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("case", SSRF_CASES, ids=str)
def test_full_clean_names_only_the_reason(case: SSRFCase, port) -> None:
    endpoint = Endpoint(url=case.at(port))
    with refusing_ssrf(), pytest.raises(ValidationError) as excinfo:
        endpoint.full_clean()
    (message,) = excinfo.value.message_dict["url"]  # the reason, not also "Enter a valid URL."
    assert case.reason.lower() in message.lower()


@pytest.mark.parametrize("case", SSRF_CASES, ids=str)
def test_changing_the_url_of_a_saved_endpoint_refuses(case: SSRFCase, port) -> None:
    with refusing_ssrf():
        endpoint = Endpoint.objects.create(url=SAFE_URL)
        endpoint.url = case.at(port)
        with pytest.raises(ValidationError):
            endpoint.save()
    assert Endpoint.objects.get().url == SAFE_URL


# -- saving: the admin ----------------------------------------------------------------------------


class _FormFields(HTMLParser):
    """The values a browser would submit for the first form with a ``url`` field."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields[name] = a.get("value", "on" if a.get("type") == "checkbox" else "")
        elif tag == "textarea" and name:
            self._textarea, self.fields[name] = name, ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and ("selected" in a):
            self.fields[self._select] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def admin_add_url(model: type) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/add/"


def admin_form_defaults(superuser_client, model: type) -> dict[str, str]:
    response = superuser_client.get(admin_add_url(model))
    assert response.status_code == 200
    parser = _FormFields()
    parser.feed(response.content.decode())
    fields = {k: v.strip("\n") for k, v in parser.fields.items()}
    assert "url" in fields, "the endpoint add form has no url field"
    return fields


@pytest.mark.parametrize("case", SSRF_CASES, ids=str)
def test_admin_add_form_refuses(case: SSRFCase, superuser_client, port) -> None:
    assert Endpoint in admin.site._registry
    with refusing_ssrf():
        data = admin_form_defaults(superuser_client, Endpoint)
        data["url"] = case.at(port)
        response = superuser_client.post(admin_add_url(Endpoint), data)
    assert response.status_code == 200, "the form was accepted"
    assert_refused_page(response.content, case)
    assert not Endpoint.objects.exists()


def test_admin_add_form_accepts_a_public_url(superuser_client) -> None:
    # Without this, the refusals above could be any form error.
    with refusing_ssrf():
        data = admin_form_defaults(superuser_client, Endpoint)
        data["url"] = SAFE_URL
        response = superuser_client.post(admin_add_url(Endpoint), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Endpoint.objects.get().url == SAFE_URL


@pytest.mark.parametrize("case", SSRF_CASES, ids=str)
def test_api_create_refuses(case: SSRFCase, django_user_model, port) -> None:
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(django_user_model.objects.create_user("customer"))
    with refusing_ssrf():
        response = api.post("/api/hooks/endpoints/", {"url": case.at(port)}, format="json")
    assert_refused_response(response, case)
    assert not Endpoint.objects.exists()


def test_api_create_and_update_accept_a_public_url_and_refuse_a_private_one(
    django_user_model, port
) -> None:
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(django_user_model.objects.create_user("customer"))
    with refusing_ssrf():
        created = api.post("/api/hooks/endpoints/", {"url": SAFE_URL}, format="json")
        assert created.status_code == 201, created.content
        pk = created.json()["id"]
        case = SSRF_CASES[0]
        response = api.patch(f"/api/hooks/endpoints/{pk}/", {"url": case.at(port)}, format="json")
    assert_refused_response(response, case)
    assert Endpoint.objects.get().url == SAFE_URL


# -- saving: the customer portal ------------------------------------------------------------------


@pytest.mark.parametrize("case", SSRF_CASES, ids=str)
def test_portal_add_form_refuses(case: SSRFCase, django_user_model, port) -> None:
    from django.test import Client

    browser = Client()
    browser.force_login(django_user_model.objects.create_user("customer"))
    with refusing_ssrf():
        response = browser.post("/webhooks/new/", {"url": case.at(port)})
    assert response.status_code == 400, "the form was accepted"
    assert_refused_page(response.content, case)
    assert not Endpoint.objects.exists()


def test_portal_forms_accept_a_public_url_and_refuse_a_private_one(django_user_model, port) -> None:
    from django.test import Client

    browser = Client()
    browser.force_login(django_user_model.objects.create_user("customer"))
    with refusing_ssrf():
        created = browser.post("/webhooks/new/", {"url": SAFE_URL})
        assert created.status_code == 302, created.content.decode()[:2000]
        pk = Endpoint.objects.get().pk
        case = SSRF_CASES[0]
        response = browser.post(f"/webhooks/{pk}/edit/", {"url": case.at(port)})
    assert response.status_code == 400
    assert_refused_page(response.content, case)
    assert Endpoint.objects.get().url == SAFE_URL


def post_token_url(user, token_url: str):
    """The owner's credentials page, posted with OAuth2 credentials fetched from ``token_url``."""
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    with refusing_ssrf():
        endpoint = Endpoint(url=SAFE_URL)
        endpoint.owner = user
        endpoint.save()
        return browser.post(
            f"/webhooks/{endpoint.pk}/credentials/",
            {
                "credentials_kind": "oauth2",
                "credentials_token_url": token_url,
                "credentials_client_id": "acme",
                "credentials_client_secret": "cs_Ol9Ik8Uj7",
            },
        )


@pytest.mark.parametrize("case", SSRF_CASES, ids=str)
def test_portal_credentials_form_refuses_a_token_url(
    case: SSRFCase, django_user_model, port
) -> None:
    response = post_token_url(django_user_model.objects.create_user("customer"), case.at(port))
    assert response.status_code == 400, "the form was accepted"
    if case.url.startswith(("http://", "https://")):
        assert_refused_page(response.content, case)
    else:  # refused before the guard, by the credential's own check (as in the API and admin)
        assert "token_url must be an http:// or https:// URL." in response.content.decode()
    assert Endpoint.objects.get().auth is None


def test_portal_credentials_form_accepts_a_public_token_url(django_user_model) -> None:
    # Without this, the refusals above could be any form error.
    response = post_token_url(
        django_user_model.objects.create_user("customer"), "https://public.attacker.test/token"
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Endpoint.objects.get().auth_public["token_url"] == "https://public.attacker.test/token"


# -- delivering -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_delivery_refuses_every_case_and_sends_nothing(receiver) -> None:
    """Endpoints whose stored URL was never validated (raw SQL, an old row) are still refused."""
    with refusing_ssrf():
        endpoints = {}
        for case in SSRF_CASES:
            endpoint = Endpoint.objects.create(url=SAFE_URL)
            Endpoint.objects.filter(pk=endpoint.pk).update(url=case.at(receiver.port))
            endpoints[endpoint.pk] = case
        event = django_hooks.send_event("order.paid", {"id": 1})
        assert run_worker()

    assert receiver.requests == []
    deliveries = Delivery.objects.filter(event=event).prefetch_related("attempt_log")
    assert len(deliveries) == len(SSRF_CASES)
    for delivery in deliveries:
        case = endpoints[delivery.endpoint_id]
        (attempt,) = delivery.attempt_log.all()
        assert attempt.error.startswith("blocked: "), (case, attempt.error)
        assert case.reason.lower() in attempt.error.lower(), (case, attempt.error)
        assert attempt.status_code is None
        assert delivery.status == "pending" and delivery.last_error == attempt.error


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_dns_rebinding_to_loopback_after_saving_is_refused(receiver) -> None:
    """Public when saved, 127.0.0.1 when delivered, nothing allowed: refused, nothing arrives."""
    dns = FakeDNS()
    dns.script("rebind.attacker.test", [PUBLIC_V4], ["127.0.0.1"])
    with refusing_ssrf(dns):
        Endpoint.objects.create(url=f"http://rebind.attacker.test:{receiver.port}/hook")
        django_hooks.send_event("order.paid", {"id": 1})
        assert run_worker()
    (attempt,) = Delivery.objects.get().attempt_log.all()
    assert attempt.error == (
        "blocked: rebind.attacker.test resolves to 127.0.0.1, a loopback address "
        "(not in ALLOWED_NETWORKS)"
    )
    assert receiver.requests == []
    assert dns.lookups == ["rebind.attacker.test"] * 2  # once to save, once to connect


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_the_connection_goes_to_the_address_that_was_vetted(receiver) -> None:
    """The name is resolved once per connection and the socket connects to that very answer:
    a second lookup (here answering the metadata address) is never made."""
    dns = FakeDNS()
    dns.script("rebind.attacker.test", ["127.0.0.1"], ["127.0.0.1"], ["169.254.169.254"])
    with refusing_ssrf(dns, ALLOWED_NETWORKS=["127.0.0.1/32"]):
        Endpoint.objects.create(url=f"http://rebind.attacker.test:{receiver.port}/hook")
        django_hooks.send_event("order.paid", {"id": 1})
        assert run_worker()
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded", delivery.last_error
    (request,) = receiver.requests
    assert request.headers["host"] == f"rebind.attacker.test:{receiver.port}"
    assert dns.lookups == ["rebind.attacker.test"] * 2


REDIRECTS = [301, 302, 303, 307, 308]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("target", ["internal", "metadata"])
def test_redirects_are_never_followed(status: int, target: str, receiver) -> None:
    # The receiver stands for a public host; /internal would be reachable if a redirect were
    # followed (127.0.0.1 is allowed here), the metadata address would not be.
    location = receiver.url("/internal") if target == "internal" else "http://169.254.169.254/"
    receiver.script("/hook", Reply(status, headers={"Location": location}, body=b""))
    with refusing_ssrf(ALLOWED_NETWORKS=["127.0.0.1/32"]):
        Endpoint.objects.create(url=receiver.url())
        django_hooks.send_event("order.paid", {"id": 1})
        assert run_worker()
    assert [r.path for r in receiver.requests] == ["/hook"]
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code == status
    assert delivery.last_error == f"HTTP {status}: redirects are not followed (to {location})"


# -- ALLOWED_NETWORKS -----------------------------------------------------------------------------

ALLOWED = [
    # (allowed networks, url, allowed?)
    (["127.0.0.1/32"], "http://127.0.0.1:{port}/hook", True),
    (["127.0.0.1/32"], "http://[::ffff:127.0.0.1]:{port}/hook", True),  # the same address
    (["127.0.0.1/32"], "http://127.0.0.2:{port}/hook", False),
    (["127.0.0.1/32"], "http://[::1]:{port}/hook", False),
    (["127.0.0.1/32"], "http://10.0.0.1/", False),
    (["127.0.0.1/32"], "http://169.254.169.254/", False),
    (["127.0.0.1/32"], "http://six.attacker.test:{port}/hook", False),
    (["127.0.0.1/32"], "http://loopback.attacker.test:{port}/hook", True),
    (["10.0.0.0/8"], "http://10.255.255.255/", True),
    (["10.0.0.0/8"], "http://private.attacker.test/", True),
    (["10.0.0.0/8"], "http://172.16.0.1/", False),
    (["10.0.0.0/8"], "http://127.0.0.1:{port}/hook", False),
    (["10.0.0.0/8"], "http://169.254.169.254/", False),
    (["10.0.0.0/8"], "http://[64:ff9b::a00:1]/", True),  # NAT64 form of an allowed address
    (["10.0.0.0/8"], "http://[fd00::1]/", False),
    (["fd00::/8"], "http://[fd00::1]/", True),
    (["fd00::/8"], "http://[fc00::1]/", False),
    (["fd00::/8"], "http://10.0.0.1/", False),
    (["192.168.1.0/24"], "http://192.168.1.77/", True),
    (["192.168.1.0/24"], "http://192.168.2.1/", False),
]


@pytest.mark.parametrize(("networks", "url", "allowed"), ALLOWED)
def test_allowed_networks_let_exactly_those_through(networks, url, allowed, port) -> None:
    endpoint = Endpoint(url=url.replace("{port}", str(port)))
    with refusing_ssrf(ALLOWED_NETWORKS=networks):
        if allowed:
            endpoint.validate()
        else:
            with pytest.raises(ValidationError):
                endpoint.validate()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_an_allowed_network_is_delivered_to_and_nothing_else(receiver) -> None:
    with refusing_ssrf(ALLOWED_NETWORKS=["127.0.0.1/32"]):
        allowed = Endpoint.objects.create(url=receiver.url())
        other = Endpoint.objects.create(url=SAFE_URL)
        Endpoint.objects.filter(pk=other.pk).update(url=f"http://127.0.0.2:{receiver.port}/hook")
        django_hooks.send_event("order.paid", {"id": 1})
        assert run_worker()
    assert Delivery.objects.get(endpoint=allowed).status == "succeeded"
    refused = Delivery.objects.get(endpoint=other)
    assert refused.last_error.startswith("blocked: 127.0.0.2 is a loopback address")
    assert len(receiver.requests) == 1


def test_the_guard_uses_the_configured_resolver() -> None:
    dns = FakeDNS({"x.attacker.test": ["10.9.9.9"]})
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": []}), client.use_resolver(dns):
        with pytest.raises(ValidationError, match="10.9.9.9"):
            Endpoint(url="http://x.attacker.test/").validate()
    assert dns.lookups == ["x.attacker.test"]


def test_a_form_then_a_save_look_each_name_up_once() -> None:
    """Validation (a form's, the API's) passes the URL and the token URL; the save right after
    checks them again only if they changed."""
    dns = FakeDNS({"hooks.example.test": ["93.184.216.34"], "auth.example.test": ["93.184.216.35"]})
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": []}), client.use_resolver(dns):
        endpoint = Endpoint(url="https://hooks.example.test/in")
        endpoint.auth = OAuth2ClientCredentials(
            token_url="https://auth.example.test/token", client_id="acme", client_secret="cs_1"
        )
        endpoint.validate()
        endpoint.save()
        assert dns.lookups == ["hooks.example.test", "auth.example.test"]
        endpoint.url = "https://hooks.example.test/moved"
        endpoint.save()
    assert dns.lookups == ["hooks.example.test", "auth.example.test", "hooks.example.test"]


# -- HTTPS_ONLY -----------------------------------------------------------------------------------


def test_https_only_refuses_plain_http_on_save_and_accepts_https() -> None:
    with refusing_ssrf(HTTPS_ONLY=True):
        with pytest.raises(ValidationError, match="only https:// URLs are allowed"):
            Endpoint.objects.create(url=SAFE_URL)
        Endpoint.objects.create(url=SAFE_URL.replace("http://", "https://"))
    with refusing_ssrf():
        Endpoint.objects.create(url=SAFE_URL)  # off by default


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis")
def test_https_only_refuses_plain_http_at_delivery(receiver) -> None:
    with refusing_ssrf(ALLOWED_NETWORKS=["127.0.0.1/32"]):
        Endpoint.objects.create(url=receiver.url())
    with refusing_ssrf(ALLOWED_NETWORKS=["127.0.0.1/32"], HTTPS_ONLY=True):
        django_hooks.send_event("order.paid", {"id": 1})
        assert run_worker()
    assert receiver.requests == []
    assert Delivery.objects.get().last_error == (
        "blocked: only https:// URLs are allowed (HTTPS_ONLY is set)"
    )
