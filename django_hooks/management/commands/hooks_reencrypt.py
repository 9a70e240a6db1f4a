"""Re-encrypt every stored endpoint secret under the newest ENCRYPTION_KEYS entry, so older
keys can then be removed from the setting."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from django_hooks.secrets import reencrypt_all


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        count = reencrypt_all()
        self.stdout.write(f"Re-encrypted the secrets of {count} endpoints.")
