"""Operations on endpoint secrets as a whole: signing secrets, receiver credentials and the
custom header values, all encrypted at rest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

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


@dataclass
class _Row:
    """One endpoint's encrypted columns as stored (``headers`` as its raw JSON text)."""

    pk: int
    ciphertext: str
    previous: list[dict[str, Any]]
    signing_key: str
    previous_keys: list[dict[str, Any]]
    auth: str
    headers: str | None

    @property
    def header_token(self) -> str | None:
        """The Fernet token of the headers, or None when they are stored in clear ({})."""
        value = json.loads(self.headers) if self.headers else None
        return value if isinstance(value, str) else None

    def tokens(self) -> list[str]:
        found = [self.ciphertext, *(entry["ciphertext"] for entry in self.previous or [])]
        found += [entry["ciphertext"] for entry in self.previous_keys or []]
        found += [token for token in (self.signing_key, self.auth, self.header_token) if token]
        return found


_COLUMNS = (
    "pk",
    "secret_ciphertext",
    "previous_secrets",
    "signing_key_ciphertext",
    "previous_signing_keys",
    "auth_ciphertext",
    "headers_text",
)


def _rows(queryset: Any) -> Any:
    return queryset.annotate(headers_text=Cast("headers", output_field=TextField())).values_list(
        *_COLUMNS
    )


def _reencrypted(row: _Row) -> dict[str, Any] | None:
    """The row's columns rewritten under the newest key, or None if they already are."""
    if all(encryption.is_current(token) for token in row.tokens()):
        return None
    values: dict[str, Any] = {
        "secret_ciphertext": encryption.reencrypt(row.ciphertext),
        "previous_secrets": _reencrypted_entries(row.previous or []),
        "previous_signing_keys": _reencrypted_entries(row.previous_keys or []),
    }
    if row.signing_key:
        values["signing_key_ciphertext"] = encryption.reencrypt(row.signing_key)
    if row.auth:
        values["auth_ciphertext"] = encryption.reencrypt(row.auth)
    if (token := row.header_token) is not None:
        # The field encrypts on write: hand it the plain value, checked readable here.
        values["headers"] = json.loads(encryption.decrypt(token))
    return values


def _reencrypted_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**entry, "ciphertext": encryption.reencrypt(entry["ciphertext"])} for entry in entries]


def reencrypt_secrets(batch_size: int = 500) -> ReencryptReport:
    """Rewrite every endpoint's secrets, Ed25519 signing keys, credentials and header values
    under the newest ``ENCRYPTION_KEYS`` entry.

    Resumable and safe while workers run: rows already under the newest key are skipped, each
    batch commits on its own (an interrupted run keeps its progress; no row is half-written), no
    lock is held across batches, and a row whose secret, credentials or headers changed
    meanwhile is re-read rather than overwritten. Rows no configured key can read are
    reported, not fatal.
    """
    report = ReencryptReport()
    last_pk = 0
    while True:
        rows = list(_rows(Endpoint.objects.filter(pk__gt=last_pk).order_by("pk"))[:batch_size])
        if not rows:
            return report
        last_pk = rows[-1][0]
        with transaction.atomic():
            for values in rows:
                _reencrypt_row(report, _Row(*values))


def _reencrypt_row(report: ReencryptReport, row: _Row) -> None:
    for _ in range(CONCURRENT_RETRIES):
        try:
            new = _reencrypted(row)
        except DecryptionError:
            report.unreadable.append(row.pk)
            return
        if new is None:
            report.current += 1
            return
        # Compare-and-swap on every token as read: rotate_secret(), rotate_signing_key() and
        # any edit of the credentials or headers change them, so a change that landed since we
        # read the row is never overwritten with older values.
        unchanged = Endpoint.objects.alias(
            headers_text=Cast("headers", output_field=TextField())
        ).filter(
            pk=row.pk,
            secret_ciphertext=row.ciphertext,
            signing_key_ciphertext=row.signing_key,
            auth_ciphertext=row.auth,
        )
        unchanged = (
            unchanged.filter(headers_text__isnull=True)
            if row.headers is None
            else unchanged.filter(headers_text=row.headers)
        )
        if unchanged.update(**new):
            report.rewritten += 1
            return
        fresh = _rows(Endpoint.objects.filter(pk=row.pk)).first()
        if fresh is None:  # deleted meanwhile
            return
        row = _Row(*fresh)
    report.unreadable.append(row.pk)  # kept changing under us: the next run will pick it up


def reencrypt_all(batch_size: int = 500) -> int:
    """Rewrite every endpoint's secrets (signing secrets, credentials, header values) under
    the newest key; return how many endpoints are.

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
