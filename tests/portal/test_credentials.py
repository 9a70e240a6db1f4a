"""The credentials page: receiver credentials and custom headers set, kept, replaced and removed;
secrets and header values never in the HTML; every refusal named and nothing half-written."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

from django_hooks.core.credentials import BasicAuth, BearerToken, OAuth2ClientCredentials
from django_hooks.models import Endpoint
from tests.portal.conftest import PORTAL, csrf_token_of, logged_in, make_endpoint, through_link
from tests.security.test_secret_leaks import client_certificate

pytestmark = pytest.mark.django_db

PASSWORD = "pw_Ik8Uj7Yh6Tg5"
TOKEN = "tok_Ws2Ed3Rf4Tg5"
API_KEY = "key_Qa1Zx2Cv3Bn4"
OTHER_KEY = "key_Mn5Bv6Cx7Za8"


@pytest.fixture(params=["login", "link"])
def client(request, alice):
    return logged_in(alice) if request.param == "login" else through_link(alice)


def url(endpoint: Endpoint) -> str:
    return f"{PORTAL}{endpoint.pk}/credentials/"


def post(client, endpoint: Endpoint, **data: str):
    token = csrf_token_of(client.get(url(endpoint)))
    return client.post(url(endpoint), {**data, "csrfmiddlewaretoken": token})


def saved(response, endpoint: Endpoint) -> None:
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert response["Location"] == f"{PORTAL}{endpoint.pk}/?notice=credentials-saved"


def errors(response) -> str:
    assert response.status_code == 400, response.status_code
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


def values_rendered(html: str) -> list[str]:
    """Every value attribute and textarea content on the page."""
    found = re.findall(r'value="([^"]*)"', html)
    return found + re.findall(r"<textarea[^>]*>(.*?)</textarea>", html, re.DOTALL)


def test_credentials_are_set_kept_changed_and_removed(client, alice):
    endpoint = make_endpoint(alice)
    page = client.get(url(endpoint)).content.decode()
    assert "Now: none" in page and 'name="credentials_kind"' in page

    saved(
        post(
            client,
            endpoint,
            credentials_kind="basic",
            credentials_username="acme",
            credentials_password=PASSWORD,
        ),
        endpoint,
    )
    assert Endpoint.objects.get().auth == BasicAuth("acme", PASSWORD)
    page = client.get(url(endpoint)).content.decode()
    assert "HTTP Basic" in page and 'value="acme"' in page
    assert PASSWORD not in page and Endpoint.objects.get().auth_ciphertext not in page
    assert "HTTP Basic" in client.get(f"{PORTAL}{endpoint.pk}/").content.decode()

    # The password left blank while the kind stays: kept, the username changed.
    saved(post(client, endpoint, credentials_kind="basic", credentials_username="acme2"), endpoint)
    assert Endpoint.objects.get().auth == BasicAuth("acme2", PASSWORD)

    # Another kind needs its own secret: named, nothing written.
    refused = post(client, endpoint, credentials_kind="bearer")
    assert "Bearer: token is required." in errors(refused)
    assert Endpoint.objects.get().auth == BasicAuth("acme2", PASSWORD)

    saved(post(client, endpoint, credentials_kind="bearer", credentials_token=TOKEN), endpoint)
    assert Endpoint.objects.get().auth == BearerToken(TOKEN)
    assert TOKEN not in client.get(url(endpoint)).content.decode()

    saved(post(client, endpoint, credentials_kind=""), endpoint)
    assert Endpoint.objects.get().auth is None


def test_a_secret_typed_with_an_error_is_not_shown_again(client, alice):
    endpoint = make_endpoint(alice)
    certificate, _ = client_certificate()
    _, other_key = client_certificate()
    refused = post(
        client,
        endpoint,
        credentials_kind="mtls",
        credentials_certificate=certificate,
        credentials_private_key=other_key,
        new_0_name="X-Api-Key",
        new_0_value=API_KEY,
    )
    html = errors(refused)
    assert "mTLS: private_key does not belong to the certificate." in html
    assert all(line not in html for line in other_key.splitlines()[1:-1])
    assert API_KEY not in html and 'value="X-Api-Key"' in html  # the name comes back
    assert Endpoint.objects.get().auth is None and Endpoint.objects.get().headers == {}


def test_a_client_certificate_shows_its_subject_never_its_key(client, alice):
    endpoint = make_endpoint(alice)
    certificate, key = client_certificate()
    response = post(
        client,
        endpoint,
        credentials_kind="mtls",
        credentials_certificate=certificate,
        credentials_private_key=key,
    )
    saved(response, endpoint)
    for path in (url(endpoint), f"{PORTAL}{endpoint.pk}/"):
        html = client.get(path).content.decode()
        assert "CN=leak-test client" in html
        assert all(line not in html for line in key.splitlines()[1:-1])
    # Saved again with both left blank: kept.
    saved(post(client, endpoint, credentials_kind="mtls"), endpoint)
    assert Endpoint.objects.get().auth.private_key == key

    bad = post(
        client,
        endpoint,
        credentials_kind="mtls",
        credentials_certificate="not a certificate",
        credentials_private_key="nor a key",
    )
    assert "mTLS: certificate is not a PEM certificate." in errors(bad)
    assert Endpoint.objects.get().auth.private_key == key


def test_a_token_url_the_ssrf_guard_refuses_is_named_and_nothing_is_written(client, alice):
    endpoint = make_endpoint(alice, headers={"X-Api-Key": API_KEY})
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": []}):
        refused = post(
            client,
            endpoint,
            credentials_kind="oauth2",
            credentials_token_url="http://10.0.0.1/token",
            credentials_client_id="acme",
            credentials_client_secret="cs_Ol9Ik8Uj7",
            header_0_name="X-Api-Key",
            header_0_delete="on",
        )
        html = errors(refused)
        assert "token_url: 10.0.0.1 is a private address" in html
        assert "ALLOWED_NETWORKS" not in html  # the site's setting, not the customer's
        assert "cs_Ol9Ik8Uj7" not in html
        stored = Endpoint.objects.get()
        assert stored.auth is None and stored.headers == {"X-Api-Key": API_KEY}

    # Allowed, it is saved with its public parts shown.
    saved(
        post(
            client,
            endpoint,
            credentials_kind="oauth2",
            credentials_token_url="http://127.0.0.1:9/token",
            credentials_client_id="acme",
            credentials_client_secret="cs_Ol9Ik8Uj7",
            credentials_scope="hooks",
        ),
        endpoint,
    )
    assert Endpoint.objects.get().auth == OAuth2ClientCredentials(
        "http://127.0.0.1:9/token", "acme", "cs_Ol9Ik8Uj7", "hooks"
    )
    html = client.get(url(endpoint)).content.decode()
    assert 'value="http://127.0.0.1:9/token"' in html and "cs_Ol9Ik8Uj7" not in html


def test_headers_are_hidden_kept_replaced_deleted_and_added(client, alice):
    endpoint = make_endpoint(alice, headers={"X-Api-Key": API_KEY, "X-Tenant": "acme-tenant-1"})
    page = client.get(url(endpoint)).content.decode()
    assert "X-Api-Key" in page and "X-Tenant" in page and "[hidden]" in page
    assert API_KEY not in page and "acme-tenant-1" not in page
    assert API_KEY not in client.get(f"{PORTAL}{endpoint.pk}/").content.decode()
    rows = dict(re.findall(r'name="(header_\d+)_name" value="([^"]+)"', page))
    assert set(rows.values()) == {"X-Api-Key", "X-Tenant"}
    row = {name: key for key, name in rows.items()}

    response = post(
        client,
        endpoint,
        **{
            f"{row['X-Api-Key']}_name": "X-Api-Key",
            f"{row['X-Api-Key']}_value": OTHER_KEY,  # replaced
            f"{row['X-Tenant']}_name": "X-Tenant",
            f"{row['X-Tenant']}_delete": "on",  # deleted
            "new_0_name": "X-Region",
            "new_0_value": "eu-west-1",  # added
        },
    )
    saved(response, endpoint)
    assert Endpoint.objects.get().headers == {"X-Api-Key": OTHER_KEY, "X-Region": "eu-west-1"}

    # Left blank: kept. Every value write-only: none in any value attribute.
    page = client.get(url(endpoint)).content.decode()
    assert not {OTHER_KEY, "eu-west-1"} & set(values_rendered(page))
    saved(post(client, endpoint, header_0_name="X-Api-Key", header_1_name="X-Region"), endpoint)
    assert Endpoint.objects.get().headers == {"X-Api-Key": OTHER_KEY, "X-Region": "eu-west-1"}


def test_header_refusals_are_named_and_nothing_is_written(client, alice):
    endpoint = make_endpoint(alice, headers={"X-Api-Key": API_KEY})
    cases = [
        ({"new_0_name": "x-api-key", "new_0_value": "again"}, "'x-api-key' is given twice"),
        ({"new_0_value": "orphan"}, "New header 1 has a value but no name."),
        ({"new_0_name": "X-Empty"}, "Enter a value for the new header 'X-Empty'."),
        ({"new_0_name": "Bad Name", "new_0_value": "v"}, "'Bad Name' is not a valid header name."),
        ({"new_0_name": "webhook-id", "new_0_value": "v"}, "'webhook-id' is set by django-hooks"),
        # A header the page listed but another change removed since: the API's [hidden] rule.
        ({"header_1_name": "X-Gone"}, "'X-Gone': '[hidden]' keeps a stored value"),
        (
            {
                "credentials_kind": "bearer",
                "credentials_token": TOKEN,
                "new_0_name": "Authorization",
                "new_0_value": "Bearer other",
            },
            "Authorization is set by the endpoint's credentials (auth).",
        ),
    ]
    for data, message in cases:
        response = post(client, endpoint, header_0_name="X-Api-Key", **data)
        html = errors(response)
        assert message in html, (data, html[-3000:])
        assert "Nothing was saved" in html
        stored = Endpoint.objects.get()
        assert stored.headers == {"X-Api-Key": API_KEY} and stored.auth is None, data


def test_saving_writes_only_credentials_and_headers(client, alice):
    endpoint = make_endpoint(alice, description="mine")
    page = client.get(url(endpoint))
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    # Changed elsewhere meanwhile (the edit page, the API, an operator): left as it is.
    Endpoint.objects.filter(pk=endpoint.pk).update(description="changed", is_active=False)
    saved(post(client, endpoint, credentials_kind="bearer", credentials_token=TOKEN), endpoint)
    stored = Endpoint.objects.get()
    assert (stored.description, stored.is_active, stored.auth) == (
        "changed",
        False,
        BearerToken(TOKEN),
    )
