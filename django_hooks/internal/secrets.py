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


#: The columns that hold an endpoint's secrets and signing keys, in the order rows are read.
COLUMNS = ("secret_ciphertext", "previous_secrets", "signing_key_ciphertext",
           "previous_signing_keys")  # fmt: skip


def _reencrypted(row: tuple[Any, ...]) -> dict[str, Any] | None:
    """The row's tokens (secrets and Ed25519 keys) under the newest key, or None if they
    already are."""
    ciphertext, previous, signing_key, previous_keys = row
    previous, previous_keys = previous or [], previous_keys or []
    tokens = [
        ciphertext,
        *(e["ciphertext"] for e in previous),
        *(e["ciphertext"] for e in previous_keys),
    ]
    if signing_key:
        tokens.append(signing_key)
    if all(encryption.is_current(token) for token in tokens):
        return None
    return {
        "secret_ciphertext": encryption.reencrypt(ciphertext),
        "previous_secrets": _reencrypted_entries(previous),
        "signing_key_ciphertext": encryption.reencrypt(signing_key) if signing_key else "",
        "previous_signing_keys": _reencrypted_entries(previous_keys),
    }


def _reencrypted_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**entry, "ciphertext": encryption.reencrypt(entry["ciphertext"])} for entry in entries]


def reencrypt_secrets(batch_size: int = 500) -> ReencryptReport:
    """Rewrite every endpoint's secrets and signing keys under the newest ``ENCRYPTION_KEYS`` entry.

    Resumable and safe while workers run: rows already under the newest key are skipped, each
    batch commits on its own (an interrupted run keeps its progress; no row is half-written), no
    lock is held across batches, and a row whose secret or key was rotated meanwhile is re-read
    rather than overwritten. Rows no configured key can read are reported, not fatal.
    """
    report = ReencryptReport()
    last_pk = 0
    while True:
        rows = list(
            Endpoint.objects.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", *COLUMNS)[:batch_size]
        )
        if not rows:
            return report
        last_pk = rows[-1][0]
        with transaction.atomic():
            for pk, *row in rows:
                _reencrypt_row(report, pk, tuple(row))


def _reencrypt_row(report: ReencryptReport, pk: int, row: tuple[Any, ...]) -> None:
    for _ in range(CONCURRENT_RETRIES):
        try:
            new = _reencrypted(row)
        except DecryptionError:
            report.unreadable.append(pk)
            return
        if new is None:
            report.current += 1
            return
        # Compare-and-swap on the current tokens: rotate_secret() and rotate_signing_key()
        # always change theirs, so a rotation that landed since we read the row is never
        # overwritten with older credentials.
        unchanged = {"secret_ciphertext": row[0], "signing_key_ciphertext": row[2]}
        if Endpoint.objects.filter(pk=pk, **unchanged).update(**new):
            report.rewritten += 1
            return
        fresh = Endpoint.objects.filter(pk=pk).values_list(*COLUMNS).first()
        if fresh is None:  # deleted meanwhile
            return
        row = tuple(fresh)
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
