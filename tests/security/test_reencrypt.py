"""Key rotation: ``hooks_reencrypt`` moves every secret to the newest key, resumably and without
clobbering a secret rotated while it runs; deliveries keep working throughout."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

import django_hooks
from django_hooks.core.credentials import BasicAuth
from django_hooks.internal import encryption, secrets
from django_hooks.models import Delivery, Endpoint
from django_hooks.testing import drain

pytestmark = pytest.mark.django_db(transaction=True)

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
BASE = {"ALLOWED_NETWORKS": ["127.0.0.0/8"], "RETRY_SCHEDULE": [0], "TIMEOUT": 2}


def keys(*entries: str):
    return override_settings(DJANGO_HOOKS={**BASE, "ENCRYPTION_KEYS": list(entries)})


def tokens(endpoint_pk: int) -> list[str]:
    row = Endpoint.objects.values("secret_ciphertext", "previous_secrets").get(pk=endpoint_pk)
    return [row["secret_ciphertext"], *(e["ciphertext"] for e in row["previous_secrets"])]


def readable_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except Exception:
        return False
    return True


@pytest.fixture
def old_endpoints(receiver):
    """Five endpoints under OLD, each with a rotated-out secret still signing."""
    with keys(OLD):
        created = []
        for n in range(5):
            endpoint = Endpoint.objects.create(url=receiver.url(f"/e{n}"))
            first = endpoint.secret
            second = endpoint.rotate_secret()
            created.append((endpoint.pk, [second, first]))
    yield created


def test_every_secret_moves_to_the_newest_key(old_endpoints) -> None:
    with keys(NEW, OLD):
        out = io.StringIO()
        call_command("hooks_reencrypt", stdout=out)
    assert "5 endpoints. 5 needed rewriting; 0 were already" in out.getvalue()
    with keys(NEW):  # the old key can now be dropped
        for pk, live in old_endpoints:
            assert all(readable_with(NEW, t) for t in tokens(pk))
            assert Endpoint.objects.get(pk=pk).live_secrets() == live


def test_an_interrupted_run_resumes_where_it_stopped(old_endpoints, monkeypatch) -> None:
    calls = {"n": 0}
    real = encryption.reencrypt

    def crash_on_the_seventh_token(token: str) -> str:
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # the operator's ^C, or the process being killed
        return real(token)

    with keys(NEW, OLD):
        monkeypatch.setattr(encryption, "reencrypt", crash_on_the_seventh_token)
        with pytest.raises(KeyboardInterrupt):
            secrets.reencrypt_secrets(batch_size=2)
        # The first batch (2 endpoints, 4 tokens) committed; the second was rolled back whole.
        states = [{readable_with(NEW, t) for t in tokens(pk)} for pk, _ in old_endpoints]
        assert states == [{True}, {True}, {False}, {False}, {False}]
        monkeypatch.setattr(encryption, "reencrypt", real)
        report = secrets.reencrypt_secrets(batch_size=2)
    assert (report.rewritten, report.current, report.unreadable) == (3, 2, [])
    with keys(NEW):
        for pk, live in old_endpoints:
            assert Endpoint.objects.get(pk=pk).live_secrets() == live


def test_a_secret_rotated_mid_run_is_not_overwritten(old_endpoints, monkeypatch) -> None:
    pk, _ = old_endpoints[0]
    real = encryption.reencrypt
    rotated = {}

    def rotate_meanwhile(token: str) -> str:
        if not rotated:  # another process rotates this endpoint between our read and write
            with keys(NEW, OLD):
                rotated["secret"] = Endpoint.objects.get(pk=pk).rotate_secret()
        return real(token)

    with keys(NEW, OLD):
        monkeypatch.setattr(encryption, "reencrypt", rotate_meanwhile)
        report = secrets.reencrypt_secrets()
    assert report.unreadable == [] and report.total == 5
    with keys(NEW):
        endpoint = Endpoint.objects.get(pk=pk)
        assert endpoint.secret == rotated["secret"]  # the rotation won
        assert all(readable_with(NEW, t) for t in tokens(pk))  # and all is under NEW


def test_unreadable_endpoints_are_reported_and_the_rest_done(old_endpoints) -> None:
    broken_pk = old_endpoints[2][0]
    Endpoint.objects.filter(pk=broken_pk).update(secret_ciphertext="gAAAAAB-garbage")
    with keys(NEW, OLD):
        with pytest.raises(CommandError, match=rf"1 endpoints .*\(ids {broken_pk}\)"):
            call_command("hooks_reencrypt", stdout=io.StringIO())
        assert secrets.reencrypt_secrets().current == 4  # the others were done


@pytest.mark.usefixtures("redis")
def test_deliveries_keep_working_with_secrets_half_moved(old_endpoints, receiver) -> None:
    """Workers read old and new tokens alike while both keys are configured."""
    with keys(NEW, OLD):
        Endpoint.objects.filter(pk=old_endpoints[0][0]).update(
            secret_ciphertext=encryption.reencrypt(tokens(old_endpoints[0][0])[0])
        )
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert len(receiver.requests) == 5


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(CommandError, match="positive"):
        call_command("hooks_reencrypt", "--batch-size", "0")


def key_tokens(endpoint_pk: int) -> list[str]:
    row = Endpoint.objects.values("signing_key_ciphertext", "previous_signing_keys").get(
        pk=endpoint_pk
    )
    return [row["signing_key_ciphertext"], *(e["ciphertext"] for e in row["previous_signing_keys"])]


def test_ed25519_signing_keys_move_too_and_a_key_rotated_mid_run_wins(
    receiver, monkeypatch
) -> None:
    with keys(OLD):
        endpoint = Endpoint.objects.create(url=receiver.url(), signing_scheme="ed25519")
        first = endpoint.public_key
        second = endpoint.rotate_signing_key()
        other = Endpoint.objects.create(url=receiver.url("/other"), signing_scheme="hmac+ed25519")
    real = encryption.reencrypt
    rotated = {}

    def rotate_meanwhile(token: str) -> str:
        if not rotated:  # another process rotates `other`'s key between our read and write
            with keys(NEW, OLD):
                rotated["public_key"] = Endpoint.objects.get(pk=other.pk).rotate_signing_key()
        return real(token)

    with keys(NEW, OLD):
        monkeypatch.setattr(encryption, "reencrypt", rotate_meanwhile)
        report = secrets.reencrypt_secrets()
    assert report.unreadable == [] and report.total == 2
    with keys(NEW):  # the old key can be dropped: every key token is readable under NEW
        for pk in (endpoint.pk, other.pk):
            assert all(readable_with(NEW, t) for t in key_tokens(pk))
        moved = Endpoint.objects.get(pk=endpoint.pk)
        assert moved.public_key == second
        assert [e["public_key"] for e in moved.previous_public_keys()] == [first]
        assert Endpoint.objects.get(pk=other.pk).public_key == rotated["public_key"]


def raw_tokens(endpoint_pk: int) -> tuple[str, str]:
    """The stored credential and header tokens, as the table holds them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT auth_ciphertext, headers FROM django_hooks_endpoint WHERE id = %s",
            [endpoint_pk],
        )
        auth, headers = cursor.fetchone()
    return auth, json.loads(headers) if isinstance(headers, str) else headers


def test_credentials_and_header_values_move_to_the_newest_key(receiver) -> None:
    with keys(OLD):
        endpoint = Endpoint.objects.create(
            url=receiver.url("/creds"),
            headers={"X-Api-Key": "key_Qz1Wx2Ec3"},
            auth=BasicAuth("acme", "pw_Rv4Tb5Yn6"),
        )
        plain = Endpoint.objects.create(url=receiver.url("/plain"))  # {} headers stay {}
    before = raw_tokens(endpoint.pk)
    assert all(readable_with(OLD, token) for token in before)
    with keys(NEW, OLD):
        assert secrets.reencrypt_all() == 2
    after = raw_tokens(endpoint.pk)
    assert all(readable_with(NEW, token) and not readable_with(OLD, token) for token in after)
    assert raw_tokens(plain.pk) == ("", {})
    with keys(NEW):  # OLD retired: everything still reads, and a delivery carries both
        fresh = Endpoint.objects.get(pk=endpoint.pk)
        assert fresh.headers == {"X-Api-Key": "key_Qz1Wx2Ec3"}
        assert fresh.auth == BasicAuth("acme", "pw_Rv4Tb5Yn6")
        django_hooks.send_event("order.paid", {"id": 1})
        drain()
        assert secrets.reencrypt_secrets().current == 2
    [received] = receiver.to("/creds")
    assert received.headers["x-api-key"] == "key_Qz1Wx2Ec3"
    assert received.headers["authorization"] == BasicAuth("acme", "pw_Rv4Tb5Yn6").header()


def test_headers_changed_meanwhile_are_not_overwritten(receiver, monkeypatch) -> None:
    with keys(OLD):
        endpoint = Endpoint.objects.create(url=receiver.url("/h"), headers={"X-A": "old"})
    original = secrets._reencrypted

    def edit_first(row):  # an edit lands between the read and the write
        if row.headers and "new" not in str(Endpoint.objects.get(pk=row.pk).headers):
            with keys(NEW, OLD):
                Endpoint.objects.filter(pk=row.pk).update(headers={"X-A": "new"})
        return original(row)

    monkeypatch.setattr(secrets, "_reencrypted", edit_first)
    with keys(NEW, OLD):
        secrets.reencrypt_all()
        assert Endpoint.objects.get(pk=endpoint.pk).headers == {"X-A": "new"}
