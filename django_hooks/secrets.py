"""Operations on endpoint secrets as a whole."""

from __future__ import annotations

from django.db import transaction

from django_hooks import encryption
from django_hooks.models import Endpoint


def reencrypt_all(batch_size: int = 500) -> int:
    """Rewrite every endpoint's secrets under the newest key, in one transaction; return count."""
    count = 0
    with transaction.atomic():
        endpoints = Endpoint.objects.select_for_update().only(
            "secret_ciphertext", "previous_secrets"
        )
        changed = []
        for endpoint in endpoints.iterator(chunk_size=batch_size):
            endpoint.secret_ciphertext = encryption.reencrypt(endpoint.secret_ciphertext)
            endpoint.previous_secrets = [
                {**entry, "ciphertext": encryption.reencrypt(entry["ciphertext"])}
                for entry in endpoint.previous_secrets
            ]
            changed.append(endpoint)
            if len(changed) >= batch_size:
                Endpoint.objects.bulk_update(changed, ["secret_ciphertext", "previous_secrets"])
                count += len(changed)
                changed = []
        Endpoint.objects.bulk_update(changed, ["secret_ciphertext", "previous_secrets"])
        count += len(changed)
    return count
