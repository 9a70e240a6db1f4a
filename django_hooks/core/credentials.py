"""Credentials a receiver demands, one small class per kind: what they send, what may be shown.

An endpoint stores one of these encrypted (``Endpoint.auth``); only ``public()`` (the kind and
its non-secret parts: username, token URL, client id, scope, certificate subject) is ever shown.
``from_dict`` reads the form the REST API and the admin take. Pure Python and cryptography.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from django_hooks.core.errors import InvalidCredentials

__all__ = [
    "AUTH_KINDS",
    "AUTH_TYPES",
    "BasicAuth",
    "BearerToken",
    "ClientCertificate",
    "OAuth2ClientCredentials",
    "ReceiverAuth",
    "from_dict",
]

MAX_PART = 4096  # characters of a username, password, token, URL, id or scope
MAX_PEM = 64 * 1024


def _text(kind: str, name: str, value: Any, *, required: bool = True, header: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidCredentials(f"{kind}: {name} must be a string.")
    if required and not value:
        raise InvalidCredentials(f"{kind}: {name} is required.")
    if len(value) > MAX_PART:
        raise InvalidCredentials(f"{kind}: {name} is over {MAX_PART} characters.")
    if any(c in value for c in "\r\n\0"):
        raise InvalidCredentials(f"{kind}: {name} may not contain line breaks or NUL.")
    if header and (not value.isascii() or value != value.strip()):
        raise InvalidCredentials(
            f"{kind}: {name} must be ASCII without leading or trailing spaces."
        )
    return value


@dataclass(frozen=True, repr=False)
class _Auth:
    kind: ClassVar[str]

    def __repr__(self) -> str:  # never the secret parts
        shown = ", ".join(f"{k}={v!r}" for k, v in self.public().items() if k != "kind")
        return f"<{type(self).__name__} {shown}>".replace(" >", ">")

    def public(self) -> dict[str, Any]:
        """The kind and the parts that may be shown (in lists, API responses, the admin)."""
        return {"kind": self.kind}

    def to_json(self) -> str:
        """Everything, for encryption at rest."""
        return json.dumps({"kind": self.kind, **asdict(self)}, sort_keys=True)


@dataclass(frozen=True, repr=False)
class BasicAuth(_Auth):
    """HTTP Basic: ``Authorization: Basic base64(username:password)``."""

    kind: ClassVar[str] = "basic"
    username: str
    password: str

    def __post_init__(self) -> None:
        username = _text("Basic", "username", self.username)
        if ":" in username:
            raise InvalidCredentials("Basic: username may not contain a colon.")
        _text("Basic", "password", self.password)

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "username": self.username}

    def header(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True, repr=False)
class BearerToken(_Auth):
    """A fixed token: ``Authorization: Bearer <token>``."""

    kind: ClassVar[str] = "bearer"
    token: str

    def __post_init__(self) -> None:
        _text("Bearer", "token", self.token, header=True)

    def header(self) -> str:
        return f"Bearer {self.token}"


@dataclass(frozen=True, repr=False)
class OAuth2ClientCredentials(_Auth):
    """OAuth 2.0 client credentials (RFC 6749 section 4.4): a token fetched from ``token_url``
    with the client id and secret (HTTP Basic), sent as ``Authorization: Bearer``."""

    kind: ClassVar[str] = "oauth2"
    token_url: str
    client_id: str
    client_secret: str
    scope: str = ""

    def __post_init__(self) -> None:
        _text("OAuth2", "token_url", self.token_url)
        scheme = urllib.parse.urlsplit(self.token_url).scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidCredentials("OAuth2: token_url must be an http:// or https:// URL.")
        _text("OAuth2", "client_id", self.client_id)
        _text("OAuth2", "client_secret", self.client_secret)
        _text("OAuth2", "scope", self.scope, required=False, header=True)

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "scope": self.scope,
        }

    def token_request(self) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the token request (client_secret_basic, RFC 6749 2.3.1)."""
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        quote = urllib.parse.quote_plus
        pair = f"{quote(self.client_id)}:{quote(self.client_secret)}".encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
        }
        return urllib.parse.urlencode(form).encode(), headers


@dataclass(frozen=True, repr=False)
class ClientCertificate(_Auth):
    """A TLS client certificate (mTLS): PEM certificate (chain) and its unencrypted PEM key."""

    kind: ClassVar[str] = "mtls"
    certificate: str
    private_key: str
    _summary: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("certificate", "private_key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidCredentials(f"mTLS: {name} is required (PEM text).")
            if len(value) > MAX_PEM:
                raise InvalidCredentials(f"mTLS: {name} is over {MAX_PEM} characters.")
        try:
            cert = x509.load_pem_x509_certificate(self.certificate.encode())
        except ValueError:
            raise InvalidCredentials("mTLS: certificate is not a PEM certificate.") from None
        try:
            key = serialization.load_pem_private_key(self.private_key.encode(), password=None)
        except (ValueError, TypeError):
            raise InvalidCredentials(
                "mTLS: private_key is not an unencrypted PEM private key."
            ) from None
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        encoding = serialization.Encoding.DER
        if key.public_key().public_bytes(encoding, public) != cert.public_key().public_bytes(
            encoding, public
        ):
            raise InvalidCredentials("mTLS: private_key does not belong to the certificate.")
        self._summary.update(
            subject=cert.subject.rfc4514_string(),
            not_after=cert.not_valid_after_utc.isoformat(),
            fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        )

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, **self._summary}

    @property
    def expires_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self._summary["not_after"])

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind, "certificate": self.certificate, "private_key": self.private_key},
            sort_keys=True,
        )

    def fingerprint(self) -> str:
        """A digest of the whole credential (key included), for caches keyed on it."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


ReceiverAuth = BasicAuth | BearerToken | OAuth2ClientCredentials | ClientCertificate
AUTH_TYPES = (BasicAuth, BearerToken, OAuth2ClientCredentials, ClientCertificate)

_KINDS: dict[str, type[_Auth]] = {cls.kind: cls for cls in AUTH_TYPES}
#: The kinds ``from_dict`` takes, and what each needs besides ``kind``.
AUTH_KINDS: dict[str, tuple[str, ...]] = {
    "basic": ("username", "password"),
    "bearer": ("token",),
    "oauth2": ("token_url", "client_id", "client_secret", "scope"),
    "mtls": ("certificate", "private_key"),
}


def from_dict(value: Any) -> ReceiverAuth:
    """A credential from ``{"kind": "basic", "username": ..., "password": ...}`` and the like;
    raises ``InvalidCredentials`` naming the unknown kind, a missing or an unexpected part."""
    if not isinstance(value, dict):
        raise InvalidCredentials("Must be an object with a kind and its parts.")
    kind = value.get("kind")
    if kind not in AUTH_KINDS:
        raise InvalidCredentials(
            f"kind must be one of {', '.join(AUTH_KINDS)}; got {str(kind)[:20]!r}."
        )
    parts = AUTH_KINDS[kind]
    unexpected = sorted(set(value) - {"kind", *parts})
    if unexpected:
        raise InvalidCredentials(
            f"{kind}: unexpected {', '.join(map(repr, unexpected))} (takes {', '.join(parts)})."
        )
    absent = [name for name in parts if name not in value and name != "scope"]
    if absent:
        raise InvalidCredentials(f"{kind}: {', '.join(absent)} is required.")
    return _KINDS[kind](**{name: value[name] for name in parts if name in value})  # type: ignore[return-value]
