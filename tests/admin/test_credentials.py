"""The endpoint form's receiver credentials fieldset: write-only secrets, kept when left blank,
errors named, and for view-only users the kind and non-secret parts only."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_hooks.core.credentials import BasicAuth, BearerToken
from django_hooks.models import Endpoint
from tests.admin.test_console import ENDPOINTS, admin_client_, endpoint_url, viewer  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

HOOKS = {"ALLOWED_NETWORKS": ["127.0.0.0/8"]}


def form(**overrides: str) -> dict[str, str]:
    from tests.admin.test_console import endpoint_form

    fields = {
        "url": "http://127.0.0.1:9/hook",
        "max_concurrency": "",
        "rate_limit": "",
        "credentials_kind": "",
        **overrides,
    }
    return endpoint_form(**fields)


def test_credentials_are_set_kept_changed_and_removed(admin_client_) -> None:  # noqa: F811
    with override_settings(DJANGO_HOOKS=HOOKS):
        added = admin_client_.post(
            f"{ENDPOINTS}add/",
            form(
                credentials_kind="basic",
                credentials_username="acme",
                credentials_password="pw_Ik8Uj7Yh6",
            ),
        )
        assert added.status_code == 302, added.content.decode()[-3000:]
        endpoint = Endpoint.objects.get()
        assert endpoint.auth == BasicAuth("acme", "pw_Ik8Uj7Yh6")

        page = admin_client_.get(endpoint_url(endpoint)).content.decode()
        assert "Receiver credentials" in page and 'value="acme"' in page
        assert "pw_Ik8Uj7Yh6" not in page and endpoint.auth_ciphertext not in page

        # Saved again with the password left blank: kept.
        kept = admin_client_.post(
            endpoint_url(endpoint),
            form(description="edited", credentials_kind="basic", credentials_username="acme"),
        )
        assert kept.status_code == 302
        endpoint = Endpoint.objects.get()
        assert (endpoint.description, endpoint.auth) == (
            "edited",
            BasicAuth("acme", "pw_Ik8Uj7Yh6"),
        )

        # Another kind needs its own secret: the error names it, nothing is written.
        refused = admin_client_.post(endpoint_url(endpoint), form(credentials_kind="bearer"))
        assert refused.status_code == 200
        assert "Bearer: token is required" in refused.content.decode()
        assert Endpoint.objects.get().auth == BasicAuth("acme", "pw_Ik8Uj7Yh6")
        changed = admin_client_.post(
            endpoint_url(endpoint),
            form(credentials_kind="bearer", credentials_token="tok_Ws2Ed3Rf4"),
        )
        assert changed.status_code == 302
        assert Endpoint.objects.get().auth == BearerToken("tok_Ws2Ed3Rf4")

        removed = admin_client_.post(endpoint_url(endpoint), form())
        assert removed.status_code == 302
        assert Endpoint.objects.get().auth is None


def test_a_bad_certificate_is_named(admin_client_) -> None:  # noqa: F811
    with override_settings(DJANGO_HOOKS=HOOKS):
        response = admin_client_.post(
            f"{ENDPOINTS}add/",
            form(
                credentials_kind="mtls",
                credentials_certificate="not a certificate",
                credentials_private_key="nor a key",
            ),
        )
    assert response.status_code == 200
    assert "mTLS: certificate is not a PEM certificate." in response.content.decode()
    assert not Endpoint.objects.exists()


def test_a_viewer_sees_the_kind_and_username_only(viewer) -> None:  # noqa: F811
    with override_settings(DJANGO_HOOKS=HOOKS):
        endpoint = Endpoint.objects.create(
            url="http://127.0.0.1:9/hook", auth=BasicAuth("acme", "pw_Ik8Uj7Yh6")
        )
    page = viewer.get(endpoint_url(endpoint)).content.decode()
    assert "basic, username: acme" in page
    assert "pw_Ik8Uj7Yh6" not in page and "credentials_password" not in page


def test_a_token_url_the_ssrf_guard_refuses_is_named(admin_client_) -> None:  # noqa: F811
    # No private network allowed: the model's guard refuses the token URL, on the kind's field.
    with override_settings(DJANGO_HOOKS={"ALLOWED_NETWORKS": []}):
        response = admin_client_.post(
            f"{ENDPOINTS}add/",
            form(
                url="https://hooks.example.com/in",
                credentials_kind="oauth2",
                credentials_token_url="http://10.0.0.1/token",
                credentials_client_id="acme",
                credentials_client_secret="cs_Ol9Ik8Uj7",
            ),
        )
    assert response.status_code == 200
    page = response.content.decode()
    assert "token_url: 10.0.0.1 is a private address" in page
    assert "cs_Ol9Ik8Uj7" not in page
    assert not Endpoint.objects.exists()


def test_a_private_key_is_not_shown_again_with_an_error(admin_client_) -> None:  # noqa: F811
    from tests.security.test_secret_leaks import client_certificate

    certificate, _ = client_certificate()
    _, other_key = client_certificate()
    with override_settings(DJANGO_HOOKS=HOOKS):
        response = admin_client_.post(
            f"{ENDPOINTS}add/",
            form(
                credentials_kind="mtls",
                credentials_certificate=certificate,
                credentials_private_key=other_key,
            ),
        )
    page = response.content.decode()
    assert "mTLS: private_key does not belong to the certificate." in page
    assert all(line not in page for line in other_key.splitlines()[1:-1])
    assert not Endpoint.objects.exists()
