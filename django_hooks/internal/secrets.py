"""Operations on endpoint secrets as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from django_hooks.exceptions import DecryptionError
from django_hooks.internal import encryption
from django_hooks.models import Endpoint

__all__: list[str] = []

CONCURRENT_RETRIES = 3


@dataclass
class ReencryptReport:
    """What ``reencrypt_secrets`` did: rows rewritten, rows already current, unreadable rows."""

    rewritten: int = 0
    current: int = 0
    unreadable: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Endpoints whose every secret is now under the newest key."""
        return self.rewritten + self.current


def _reencrypted(ciphertext: str, previous: list[dict[str, Any]]) -> tuple[str, list[Any]] | None:
    """The row's tokens under the newest key, or None if they already are."""
    tokens = [ciphertext, *(entry["ciphertext"] for entry in previous)]
    if all(encryption.is_current(token) for token in tokens):
        return None
    return encryption.reencrypt(ciphertext), [
        {**entry, "ciphertext": encryption.reencrypt(entry["ciphertext"])} for entry in previous
    ]


def reencrypt_secrets(batch_size: int = 500) -> ReencryptReport:
    """Rewrite every endpoint's secrets under the newest ``ENCRYPTION_KEYS`` entry.

    Resumable and safe while workers run: rows already under the newest key are skipped, each
    batch commits on its own (an interrupted run keeps its progress; no row is half-written), no
    lock is held across batches, and a row whose secret was rotated meanwhile is re-read rather
    than overwritten. Rows no configured key can read are reported, not fatal.
    """
    report = ReencryptReport()
    last_pk = 0
    while True:
        rows = list(
            Endpoint.objects.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "secret_ciphertext", "previous_secrets")[:batch_size]
        )
        if not rows:
            return report
        last_pk = rows[-1][0]
        with transaction.atomic():
            for pk, ciphertext, previous in rows:
                _reencrypt_row(report, pk, ciphertext, previous)


def _reencrypt_row(report: ReencryptReport, pk: int, ciphertext: str, previous: Any) -> None:
    for _ in range(CONCURRENT_RETRIES):
        try:
            new = _reencrypted(ciphertext, previous or [])
        except DecryptionError:
            report.unreadable.append(pk)
            return
        if new is None:
            report.current += 1
            return
        # Compare-and-swap on the current token: rotate_secret() always changes it, so a
        # rotation that landed since we read the row is never overwritten with older secrets.
        if Endpoint.objects.filter(pk=pk, secret_ciphertext=ciphertext).update(
            secret_ciphertext=new[0], previous_secrets=new[1]
        ):
            report.rewritten += 1
            return
        row = Endpoint.objects.filter(pk=pk).values_list("secret_ciphertext", "previous_secrets")
        fresh = row.first()
        if fresh is None:  # deleted meanwhile
            return
        ciphertext, previous = fresh
    report.unreadable.append(pk)  # kept changing under us: the next run will pick it up


def reencrypt_all(batch_size: int = 500) -> int:
    """Rewrite every endpoint's secrets under the newest key; return how many endpoints are.

    Raises ``DecryptionError`` naming the endpoints no configured key can read.
    """
    report = reencrypt_secrets(batch_size)
    if report.unreadable:
        raise DecryptionError(unreadable_message(report.unreadable))
    return report.total


def unreadable_message(pks: list[int]) -> str:
    shown = ", ".join(str(pk) for pk in pks[:20]) + (" …" if len(pks) > 20 else "")
    return (
        f"{len(pks)} endpoints have secrets no ENCRYPTION_KEYS entry can decrypt (ids {shown}); "
        "add the key they were written with, or rotate their secrets."
    )
