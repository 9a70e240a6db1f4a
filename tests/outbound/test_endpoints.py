import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings

from django_hooks.core.errors import HooksError
from django_hooks.exceptions import DecryptionError, EndpointValidationError
from django_hooks.internal.secrets import reencrypt_all
from django_hooks.models import Endpoint

pytestmark = pytest.mark.django_db


def raw_row(endpoint):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM django_hooks_endpoint WHERE id = %s", [endpoint.pk])
        return " ".join(str(value) for value in cursor.fetchone())


def test_a_new_endpoint_gets_a_secret_stored_encrypted():
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/hook", event_types=["order.*"])
    secret = Endpoint.objects.get(pk=endpoint.pk).secret
    assert secret.startswith("whsec_") and secret == endpoint.secret
    assert secret not in raw_row(endpoint)
    assert secret.removeprefix("whsec_") not in raw_row(endpoint)


def test_rotation_keeps_the_old_secret_signing_for_the_grace_period():
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/hook")
    old = endpoint.secret
    new = endpoint.rotate_secret()
    reloaded = Endpoint.objects.get(pk=endpoint.pk)
    assert reloaded.secret == new != old
    assert reloaded.live_secrets() == [new, old]
    assert old not in raw_row(endpoint) and new not in raw_row(endpoint)
    assert reloaded.rotate_secret(grace_period=0) not in (new, old)
    assert len(Endpoint.objects.get(pk=endpoint.pk).live_secrets()) == 2  # `new` still in grace


def test_a_chosen_secret_is_validated():
    with pytest.raises(EndpointValidationError, match="secret"):
        Endpoint(url="http://127.0.0.1:9/", secret="whsec_!!!")
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/", secret="whsec_" + "A" * 32)
    assert Endpoint.objects.get(pk=endpoint.pk).secret == "whsec_" + "A" * 32


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"url": "ftp://127.0.0.1/"}, "url", "scheme"),
        ({"url": "http://10.0.0.1/"}, "url", "private"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url", "metadata"),
        ({"event_types": "order.paid"}, "event_types", "list"),
        ({"event_types": ["order.*", "order paid"]}, "event_types", "'order paid' is not"),
        ({"event_types": ["order.*", 7]}, "event_types", "7 is not an event type"),
        ({"headers": {"webhook-id": "x"}}, "headers", "cannot be replaced"),
        ({"headers": {"X-Ok": "a\r\nb"}}, "headers", "line breaks"),
        ({"headers": {"X-Ok": "café"}}, "headers", "ASCII"),
        ({"url": "http://127.0.0.1/" + "a" * 2048}, "url", "2048"),
    ],
)
def test_invalid_endpoints_are_refused_before_any_write(fields, field, reason):
    with pytest.raises(EndpointValidationError) as info:
        Endpoint.objects.create(**{"url": "http://127.0.0.1:9/", **fields})
    assert isinstance(info.value, ValidationError) and isinstance(info.value, HooksError)
    assert field in info.value.message_dict
    assert reason in " ".join(info.value.message_dict[field])
    assert not Endpoint.objects.exists()


def test_explicit_keys_encrypt_and_reencrypt_moves_secrets_to_the_newest_key():
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    with override_settings(
        DJANGO_HOOKS={"ALLOWED_NETWORKS": ["127.0.0.0/8"], "ENCRYPTION_KEYS": [old_key.decode()]}
    ):
        endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/")
        secret = endpoint.secret
        endpoint.rotate_secret()
    settings = {
        "ALLOWED_NETWORKS": ["127.0.0.0/8"],
        "ENCRYPTION_KEYS": [new_key.decode(), old_key.decode()],
    }
    with override_settings(DJANGO_HOOKS=settings):
        assert reencrypt_all() == 1
    with override_settings(DJANGO_HOOKS={**settings, "ENCRYPTION_KEYS": [new_key.decode()]}):
        reloaded = Endpoint.objects.get(pk=endpoint.pk)
        assert reloaded.live_secrets()[1] == secret
    with override_settings(DJANGO_HOOKS={**settings, "ENCRYPTION_KEYS": [old_key.decode()]}):
        with pytest.raises(DecryptionError):
            Endpoint.objects.get(pk=endpoint.pk).secret  # noqa: B018
