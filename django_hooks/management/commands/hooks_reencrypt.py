"""Re-encrypt every stored endpoint secret and Ed25519 signing key under the newest
ENCRYPTION_KEYS entry, so older keys can then be removed from the setting. Safe to run while
workers deliver, and to run again after an interruption: endpoints already under the newest key
are skipped."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_hooks.internal.secrets import reencrypt_secrets, unreadable_message


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Endpoints per transaction (default 500)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be a positive number")
        report = reencrypt_secrets(options["batch_size"])
        self.stdout.write(
            f"Re-encrypted the secrets of {report.total} endpoints. {report.rewritten} needed "
            f"rewriting; {report.current} were already under the newest key."
        )
        if report.unreadable:
            raise CommandError(unreadable_message(report.unreadable))
