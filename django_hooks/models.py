"""Endpoints that subscribe to events, the events, and every delivery and attempt."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Any

from django import forms
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_hooks.conf import hooks_settings
from django_hooks.core import credentials, signing
from django_hooks.core.credentials import ReceiverAuth
from django_hooks.core.errors import InvalidCredentials, InvalidSecret, UnsafeURL
from django_hooks.core.ids import new_id
from django_hooks.core.payload import PayloadEncoder
from django_hooks.core.urlguard import BlockedAddress, PrivateHostName
from django_hooks.event_types import pattern_problems, patterns_matching, undeclared_subscriptions
from django_hooks.exceptions import (
    DecryptionError,
    EndpointValidationError,
    InvalidArgument,
    UnsavedOwner,
)
from django_hooks.internal import encryption
from django_hooks.internal.urlguard import url_guard

__all__ = ["Delivery", "DeliveryAttempt", "Endpoint", "Event", "InboundWebhook"]

INBOUND_LEASE = 300  # seconds a handler run may take before its call may be run again

HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers the sender owns: a custom header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "accept-encoding",
        "user-agent",
        "te",
        "upgrade",
        "trailer",
        "expect",
        "keep-alive",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    }
)
#: What a tenant may put in an endpoint's ``headers``: each is copied into every attempt.
MAX_CUSTOM_HEADERS = 20
#: Previous secrets still signing during their grace period, at most (newest kept).
MAX_PREVIOUS_SECRETS = 5
MAX_HEADER_NAME = 64
MAX_HEADER_VALUE = 1024


def new_event_id() -> str:
    return new_id("msg_")


def new_feed_position() -> str:
    """A time-sortable position in the event feed (see ``django_hooks.api.feed``)."""
    return new_id("")


def owner_q(owner: models.Model | None, prefix: str = "") -> Q:
    """Rows owned by ``owner`` (``None``: rows with no owner)."""
    if owner is None:
        return Q(**{f"{prefix}owner_content_type__isnull": True})
    if owner.pk is None:
        raise UnsavedOwner("owner must be saved before it can own webhooks")
    content_type = ContentType.objects.get_for_model(owner)
    return Q(**{f"{prefix}owner_content_type": content_type, f"{prefix}owner_id": str(owner.pk)})


class WebhookURLFormField(forms.URLField):
    """A URL form field that leaves judging the URL to the model, whose SSRF guard says why a URL
    is refused, instead of answering "Enter a valid URL." to e.g. ``http://2130706433/``."""

    default_validators: list[Any] = []

    def to_python(self, value: Any) -> str:
        try:
            return str(super().to_python(value))
        except ValidationError:  # unparsable: the guard names the problem
            return str(value).strip()


class WebhookURLField(models.URLField):
    """``URLField`` validated by ``Endpoint.validate`` (the SSRF guard) rather than Django's
    URLValidator, so every refusal names its reason; migrations see a plain URLField."""

    default_validators: list[Any] = []

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": WebhookURLFormField, **kwargs})

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.URLField", args, kwargs


class EncryptedJSONField(models.JSONField):
    """A ``JSONField`` stored as a Fernet token (a JSON string) when it holds anything: the
    endpoint's custom header values often are credentials. ``{}`` stays ``{}`` (nothing to
    hide); a row written before encryption still reads. Python code sees the plain value."""

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, UnreadableHeaders):
            raise DecryptionError(UnreadableHeaders.message)
        if value in (None, {}, []) or hasattr(value, "as_sql"):
            return super().get_prep_value(value)
        return super().get_prep_value(encryption.encrypt(json.dumps(value, sort_keys=True)))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        value = super().from_db_value(value, expression, connection)
        if isinstance(value, str):
            try:
                return json.loads(_decrypted(value, tuple(encryption.configured_keys())))
            except DecryptionError:
                # The row still loads (lists, the admin, the other deliveries of a batch);
                # sending or saving these headers raises.
                return UnreadableHeaders()
        return value


class UnreadableHeaders(dict):
    """Stored headers no configured key can decrypt: empty, and refused when sent or saved."""

    message = (
        "The endpoint's stored headers cannot be decrypted with any ENCRYPTION_KEYS entry "
        "(keep retired keys at the end of the list until hooks_reencrypt has run)."
    )


@functools.lru_cache(maxsize=1024)
def _decrypted(token: str, keys: tuple[bytes, ...]) -> str:
    # Every claimed delivery loads its endpoint: decrypting (~20-80 us) once per stored token
    # and key set, not once per row, keeps a batch's cost flat.
    return encryption.decrypt(token)


class OwnedModel(models.Model):
    """An optional owner (any model: a user, an organisation...) that scopes what is shared."""

    owner_content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    owner_id = models.CharField(max_length=64, null=True, blank=True)
    owner = GenericForeignKey("owner_content_type", "owner_id")

    class Meta:
        abstract = True


class EndpointQuerySet(models.QuerySet["Endpoint"]):
    def owned_by(self, owner: models.Model | None) -> EndpointQuerySet:
        return self.filter(owner_q(owner))

    def receiving(self) -> EndpointQuerySet:
        """Endpoints that may get new deliveries and attempts: active and not disabled."""
        return self.filter(is_active=True, disabled_at__isnull=True)

    def subscribed_to(self, event_type: str) -> EndpointQuerySet:
        subscribed = Q(event_types_match="")
        for pattern in patterns_matching(event_type):
            subscribed |= Q(event_types_match__contains=f"|{pattern}|")
        return self.filter(subscribed)

    # State changes: the only writes of ``disabled_*`` (``django_hooks.outbound.state`` adds
    # the signals and wake-ups around them).

    def disable(self, reason: str, *, by: str, now: dt.datetime) -> int:
        """Disable those not disabled yet (``by``: "system" or "operator"); how many were."""
        return self.filter(disabled_at__isnull=True).update(
            disabled_at=now, disabled_reason=reason[:255], disabled_by=by, updated_at=now
        )

    def enable(self, *, now: dt.datetime) -> int:
        """Active again, with a clean failure record: nothing held against them. A disabled
        spell is remembered (``last_disabled_at`` to ``enabled_at``) for ``replay_missing``."""
        was_disabled = Q(disabled_at__isnull=False)
        return self.update(
            last_disabled_at=Case(
                When(was_disabled, then=F("disabled_at")), default=F("last_disabled_at")
            ),
            enabled_at=Case(When(was_disabled, then=Value(now)), default=F("enabled_at")),
            is_active=True,
            disabled_at=None,
            disabled_reason="",
            disabled_by="",
            failing_since=None,
            failure_warnings_sent=0,
            paused_until=None,
            circuit_failures=0,
            updated_at=now,
        )


class SigningScheme(models.TextChoices):
    """Which Standard Webhooks signatures an endpoint's requests carry."""

    HMAC = "hmac", _("HMAC-SHA256 (v1): the receiver holds the whsec_ secret")
    ED25519 = "ed25519", _("Ed25519 (v1a): the receiver holds only the whpk_ public key")
    BOTH = "hmac+ed25519", _("Both v1 and v1a, while receivers move from one to the other")


class Endpoint(OwnedModel):
    """A URL that receives the events it subscribes to, signed with its own secret."""

    url = WebhookURLField(_("URL"), max_length=2048)
    description = models.TextField(_("description"), blank=True)
    event_types = models.JSONField(
        _("event types"),
        default=list,
        blank=True,
        help_text=_('Event types to receive; empty for all. "order.*" matches every order event.'),
    )
    # "|order.paid|invoice.*|", or "" for every type: lets one indexed-free LIKE query match.
    event_types_match = models.TextField(editable=False, default="")
    is_active = models.BooleanField(_("active"), default=True)
    headers = EncryptedJSONField(
        _("extra headers"), default=dict, blank=True, help_text=_("Sent with every request.")
    )
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(_("disabled reason"), max_length=255, blank=True)
    #: Who disabled it: an operator's disable stays until an operator lifts it (not the owner).
    disabled_by = models.CharField(
        _("disabled by"),
        max_length=10,
        blank=True,
        editable=False,
        choices=[("system", _("django-hooks (failing)")), ("operator", _("an operator"))],
    )
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    #: How many of FAILURE_WARNINGS' thresholds this failing spell has been warned of: each
    #: warning (signal, operational event, owner email) goes out once, whoever records it.
    failure_warnings_sent = models.PositiveSmallIntegerField(default=0, editable=False)
    #: The last disabled spell, kept once re-enabled: what ``replay_missing`` fills in.
    last_disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled_at = models.DateTimeField(_("re-enabled at"), null=True, blank=True, editable=False)
    send_traceparent = models.BooleanField(
        _("send traceparent"),
        default=False,
        help_text=_(
            "Send the W3C traceparent header of the request that sent each event "
            "(OpenTelemetry), so the receiver's traces continue ours."
        ),
    )
    max_concurrency = models.PositiveIntegerField(
        _("max concurrency"),
        null=True,
        blank=True,
        help_text=_("Attempts in flight at once, across all workers; empty: ENDPOINT_CONCURRENCY."),
    )
    rate_limit = models.PositiveIntegerField(
        _("rate limit"),
        null=True,
        blank=True,
        help_text=_("Most deliveries per second, across all workers; empty: no limit."),
    )
    # No worker claims the endpoint's deliveries before this time: its circuit is open (it timed
    # out or refused connections) or its rate limit is spent for the moment.
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Times in a row the circuit opened; while above 0, one probe at a time tests the endpoint.
    circuit_failures = models.PositiveIntegerField(default=0, editable=False)
    secret_ciphertext = models.TextField(editable=False)
    # [{"ciphertext": ..., "expires_at": ISO 8601}]: rotated-out secrets still signing.
    previous_secrets = models.JSONField(default=list, editable=False)
    signing_scheme = models.CharField(
        _("signing scheme"),
        max_length=16,
        choices=SigningScheme.choices,
        default=SigningScheme.HMAC,
        help_text=_(
            "v1 signatures need the shared secret to verify; v1a (Ed25519) signatures only the "
            "public key. Send both while receivers switch."
        ),
    )
    # The Fernet token of the whsk_ Ed25519 signing key ("" until a scheme or rotation needs one),
    # and rotated-out keys still signing, as previous_secrets.
    signing_key_ciphertext = models.TextField(blank=True, default="", editable=False)
    previous_signing_keys = models.JSONField(default=list, editable=False)
    # The credentials the receiver demands (``auth``): the whole credential encrypted, and
    # its kind and non-secret parts in clear, for lists and API responses.
    auth_kind = models.CharField(
        _("receiver credentials"),
        max_length=10,
        blank=True,
        editable=False,
        choices=[
            ("basic", _("HTTP Basic")),
            ("bearer", _("Bearer token")),
            ("oauth2", _("OAuth2 client credentials")),
            ("mtls", _("TLS client certificate")),
        ],
    )
    auth_public = models.JSONField(default=dict, blank=True, editable=False)
    auth_ciphertext = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = EndpointQuerySet.as_manager()

    class Meta:
        verbose_name = _("endpoint")
        verbose_name_plural = _("endpoints")
        indexes = [
            models.Index(fields=["owner_content_type", "owner_id"], name="hooks_ep_owner"),
            # The admin's state filter.
            models.Index(fields=["is_active", "disabled_at"], name="hooks_ep_state"),
        ]

    def __str__(self) -> str:
        return self.url

    # -- secrets -------------------------------------------------------------------------------

    @property
    def secret(self) -> str:
        """The current ``whsec_`` signing secret (decrypted on access; never stored in clear)."""
        if not self.secret_ciphertext:
            self.secret = signing.generate_secret()
        return encryption.decrypt(self.secret_ciphertext)

    @secret.setter
    def secret(self, value: str) -> None:
        try:
            signing.decode_secret(value)
        except InvalidSecret as exc:
            raise EndpointValidationError({"secret": [str(exc)]}) from None
        self.secret_ciphertext = encryption.encrypt(value)

    def live_secrets(self, now: dt.datetime | None = None) -> list[str]:
        """Every HMAC secret that is live now: the current one first, then unexpired old ones."""
        now = now or timezone.now()
        return [self.secret, *_unexpired(self.previous_secrets, now)]

    def rotate_secret(
        self, grace_period: float | dt.timedelta | None = None, *, new_secret: str | None = None
    ) -> str:
        """Save and return a new secret; the old one keeps signing for ``grace_period`` (24 h)."""
        kept = _kept_after_rotation(self.previous_secrets, self.secret_ciphertext, grace_period)
        value = new_secret or signing.generate_secret()
        self.secret = value
        self.previous_secrets = kept
        self.save(update_fields=["secret_ciphertext", "previous_secrets", "updated_at"])
        return value

    # -- Ed25519 signing keys (v1a) ------------------------------------------------------------

    @property
    def signs_v1(self) -> bool:
        return self.signing_scheme != SigningScheme.ED25519

    @property
    def signs_v1a(self) -> bool:
        return self.signing_scheme in (SigningScheme.ED25519, SigningScheme.BOTH)

    @property
    def public_key(self) -> str | None:
        """The ``whpk_`` key receivers verify v1a signatures with (None: no signing key yet)."""
        if not self.signing_key_ciphertext:
            return None
        return signing.public_key_for(encryption.decrypt(self.signing_key_ciphertext))

    def previous_public_keys(self, now: dt.datetime | None = None) -> list[dict[str, str]]:
        """The public keys of rotated-out signing keys still signing, with when each expires."""
        now = now or timezone.now()
        return [
            {
                "public_key": signing.public_key_for(encryption.decrypt(entry["ciphertext"])),
                "expires_at": entry["expires_at"],
            }
            for entry in self.previous_signing_keys
            if dt.datetime.fromisoformat(entry["expires_at"]) > now
        ]

    def live_signing_keys(self, now: dt.datetime | None = None) -> list[str]:
        """Every ``whsk_`` key that is live now: the current one first, then unexpired old ones."""
        if not self.signing_key_ciphertext:
            return []
        now = now or timezone.now()
        current = encryption.decrypt(self.signing_key_ciphertext)
        return [current, *_unexpired(self.previous_signing_keys, now)]

    def rotate_signing_key(self, grace_period: float | dt.timedelta | None = None) -> str:
        """Save a new Ed25519 key and return its public key; the old key keeps signing for
        ``grace_period`` (``SECRET_GRACE_PERIOD``). The signing key itself is never shown."""
        kept = _kept_after_rotation(
            self.previous_signing_keys, self.signing_key_ciphertext, grace_period
        )
        signing_key, public_key = signing.generate_signing_key()
        self.signing_key_ciphertext = encryption.encrypt(signing_key)
        self.previous_signing_keys = kept
        self.save(update_fields=["signing_key_ciphertext", "previous_signing_keys", "updated_at"])
        return public_key

    def signing_credentials(self, now: dt.datetime | None = None) -> list[str]:
        """What signs a request now, per ``signing_scheme``: HMAC secrets (v1) first, then
        Ed25519 keys (v1a), each with its rotated-out predecessors still in their grace."""
        now = now or timezone.now()
        credentials = self.live_secrets(now) if self.signs_v1 else []
        if self.signs_v1a:
            credentials += self.live_signing_keys(now)
        return credentials

    # -- receiver credentials ------------------------------------------------------------------

    @property
    def auth(self) -> ReceiverAuth | None:
        """The credentials sent to the receiver (decrypted on access), or None."""
        if not self.auth_ciphertext:
            return None
        return credentials.from_dict(json.loads(encryption.decrypt(self.auth_ciphertext)))

    @auth.setter
    def auth(self, value: ReceiverAuth | dict[str, Any] | None) -> None:
        """Set (a credential or its dict form) or clear (None) them; saved with the endpoint."""
        if value is None:
            self.auth_kind, self.auth_public, self.auth_ciphertext = "", {}, ""
            return
        try:
            auth = value if not isinstance(value, dict) else credentials.from_dict(value)
        except InvalidCredentials as exc:
            raise EndpointValidationError({"auth": [str(exc)]}) from None
        self.auth_kind, self.auth_public = auth.kind, auth.public()
        self.auth_ciphertext = encryption.encrypt(auth.to_json())

    # -- validation ----------------------------------------------------------------------------

    # The URLs last passed by the SSRF guard (in validate, or as loaded): validating or saving
    # again without changing them skips their DNS lookups.
    _validated_url: str | None = None
    _validated_token_url: str | None = None

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Endpoint:
        instance = super().from_db(*args, **kwargs)
        instance._validated_url = instance.__dict__.get("url")
        public = instance.__dict__.get("auth_public")
        if isinstance(public, dict):
            instance._validated_token_url = public.get("token_url")
        return instance

    def clean(self) -> None:
        self.validate()

    def validate(self, *, resolve: bool = True) -> None:
        """Raise ``EndpointValidationError`` naming every invalid field; change nothing."""
        errors: dict[str, list[str]] = {}
        if len(self.url or "") > 2048:
            errors["url"] = ["URLs are at most 2048 characters."]
        elif self.url != getattr(self, "_validated_url", None):
            try:
                url_guard().validate(self.url or "", resolve=resolve)
            except UnsafeURL as exc:
                errors["url"] = [url_refusal(exc)]
        if type_errors := pattern_problems(self.event_types):
            errors["event_types"] = type_errors
        elif self.event_types:
            undeclared = undeclared_subscriptions(self.event_types)
            if undeclared:
                errors["event_types"] = [
                    f"{', '.join(map(repr, undeclared))} match no declared event type "
                    "(STRICT_EVENT_TYPES is on)."
                ]
        if self.signing_scheme not in SigningScheme.values:
            choices = ", ".join(map(repr, SigningScheme.values))
            errors["signing_scheme"] = [f"{self.signing_scheme!r} is not one of {choices}."]
        for name, most in (("max_concurrency", 1000), ("rate_limit", 100_000)):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most
            ):
                errors[name] = [f"Must be a whole number from 1 to {most}, or empty."]
        header_errors = header_problems(self.headers)
        if header_errors:
            errors["headers"] = header_errors
        elif self.auth_kind and any(name.lower() == "authorization" for name in self.headers):
            errors["headers"] = ["Authorization is set by the endpoint's credentials (auth)."]
        token_url = (self.auth_public or {}).get("token_url")
        if token_url and token_url != self._validated_token_url:
            try:
                url_guard().validate(token_url, resolve=resolve)
            except UnsafeURL as exc:
                errors["auth"] = [f"token_url: {url_refusal(exc)}"]
        if errors:
            raise EndpointValidationError(errors)
        if resolve:  # what the guard just passed: a save right after need not look it up again
            self._validated_url = self.url
            self._validated_token_url = token_url

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        validated = {
            "url",
            "event_types",
            "headers",
            "max_concurrency",
            "rate_limit",
            "signing_scheme",
            "auth_public",
        }
        if update_fields is None or validated & set(update_fields):
            self.validate()
        types = sorted(set(self.event_types))
        self.event_types_match = "" if not types or "*" in types else f"|{'|'.join(types)}|"
        if update_fields is not None and "event_types" in update_fields:
            kwargs["update_fields"] = {*update_fields, "event_types_match"}
        if not self.secret_ciphertext:
            self.secret = signing.generate_secret()
        if self.signs_v1a and not self.signing_key_ciphertext:
            # The first v1a endpoint gets its key as it gets its first secret.
            self.signing_key_ciphertext = encryption.encrypt(signing.generate_signing_key()[0])
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "signing_key_ciphertext"}
        super().save(*args, **kwargs)

    # -- state ---------------------------------------------------------------------------------

    @property
    def is_receiving(self) -> bool:
        return self.is_active and self.disabled_at is None


def _unexpired(previous: list[dict[str, str]], now: dt.datetime) -> list[str]:
    """The decrypted values of rotated-out credentials whose grace period has not ended."""
    return [
        encryption.decrypt(entry["ciphertext"])
        for entry in previous
        if dt.datetime.fromisoformat(entry["expires_at"]) > now
    ]


def _kept_after_rotation(
    previous: list[dict[str, str]], current: str, grace_period: float | dt.timedelta | None
) -> list[dict[str, str]]:
    """The rotated-out credentials that go on signing once ``current`` is replaced."""
    if grace_period is None:
        grace_period = hooks_settings.SECRET_GRACE_PERIOD
    if not isinstance(grace_period, dt.timedelta):
        grace_period = dt.timedelta(seconds=grace_period)
    if grace_period < dt.timedelta(0):
        raise InvalidArgument("grace_period cannot be negative")
    now = timezone.now()
    kept = [e for e in previous if dt.datetime.fromisoformat(e["expires_at"]) > now]
    if grace_period and current:
        kept.insert(0, {"ciphertext": current, "expires_at": (now + grace_period).isoformat()})
    # Every live credential signs every request: without a cap, rotating in a loop would make
    # each webhook-signature header grow without bound. The oldest go first.
    return kept[:MAX_PREVIOUS_SECRETS]


def url_refusal(exc: UnsafeURL) -> str:
    """The SSRF guard's reason, with the way out when only ``ALLOWED_NETWORKS`` could lift it."""
    if not isinstance(exc, BlockedAddress | PrivateHostName):
        return str(exc)
    return (
        f"{exc}. To reach it from a development machine, add its network to "
        'DJANGO_HOOKS["ALLOWED_NETWORKS"] (e.g. "127.0.0.0/8" for this machine); in production '
        "leave ALLOWED_NETWORKS empty, so that no endpoint can reach your internal network."
    )


def header_problems(headers: Any) -> list[str]:
    if not isinstance(headers, dict):
        return ["Must be an object of header names to string values."]
    if len(headers) > MAX_CUSTOM_HEADERS:
        return [f"At most {MAX_CUSTOM_HEADERS} headers; got {len(headers)}."]
    problems = []
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME_RE.match(name):
            problems.append(f"{str(name)[:MAX_HEADER_NAME]!r} is not a valid header name.")
        elif len(name) > MAX_HEADER_NAME:
            problems.append(f"{name[:MAX_HEADER_NAME]!r}… is over {MAX_HEADER_NAME} characters.")
        elif name.lower() in RESERVED_HEADERS or name.lower().startswith(
            ("webhook-", "svix-", "proxy-")
        ):
            problems.append(f"{name!r} is set by django-hooks or a proxy: cannot be replaced.")
        elif isinstance(value, str) and len(value) > MAX_HEADER_VALUE:
            problems.append(f"The value of {name!r} is over {MAX_HEADER_VALUE} characters.")
        elif not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            problems.append(f"The value of {name!r} must be a string without line breaks.")
        elif value != value.strip() or not value.isascii():
            problems.append(
                f"The value of {name!r} must be ASCII without leading or trailing spaces."
            )
    return problems


class Event(OwnedModel):
    """Something that happened, sent to every endpoint subscribed to its type."""

    id = models.CharField(primary_key=True, max_length=40, default=new_event_id, editable=False)
    type = models.CharField(_("type"), max_length=255)
    data = models.JSONField(_("data"), encoder=PayloadEncoder)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    # Where the event sits in the pull feed; moved forward if its transaction committed late.
    feed_position = models.CharField(max_length=26, default=new_feed_position, editable=False)
    #: Sent to one endpoint by its "send a test event": never in event lists or the feed.
    is_test = models.BooleanField(_("test"), default=False, editable=False)
    #: The W3C traceparent of the span ``send_event`` ran in (TELEMETRY): its attempts continue
    #: that trace, and endpoints with ``send_traceparent`` receive it.
    traceparent = models.CharField(max_length=55, blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["type", "created_at"], name="hooks_event_type"),
            models.Index(fields=["owner_content_type", "owner_id", "id"], name="hooks_event_owner"),
            models.Index(
                fields=["owner_content_type", "owner_id", "feed_position"], name="hooks_event_feed"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner_content_type", "owner_id", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False, owner_content_type__isnull=False),
                name="hooks_event_idempotency_owned",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False, owner_content_type__isnull=True),
                name="hooks_event_idempotency",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    """Deliveries by state, and every change of state outside an attempt's own result (which
    ``django_hooks.outbound.delivery`` writes in bulk): claims, retries, cancels."""

    def pending(self) -> DeliveryQuerySet:
        return self.filter(status=Delivery.Status.PENDING)

    def due(self, now: dt.datetime) -> DeliveryQuerySet:
        """Pending and due by ``now`` (held by a worker or not)."""
        return self.pending().filter(next_attempt_at__lte=now)

    def unheld(self, now: dt.datetime) -> DeliveryQuerySet:
        """Not held by a live worker: never claimed, released, or its lease ran out."""
        return self.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))

    def to_receiving_endpoints(self) -> DeliveryQuerySet:
        return self.filter(endpoint__is_active=True, endpoint__disabled_at__isnull=True)

    def hold(self, token: Any, until: dt.datetime) -> int:
        """Claim these for the worker holding ``token`` until ``until``."""
        return self.update(locked_until=until, claim_token=token)

    def renew(self, token: Any, until: dt.datetime) -> int:
        """Extend the lease of the pending ones ``token`` still holds."""
        return self.pending().filter(claim_token=token).update(locked_until=until)

    def release(self, token: Any, at: dt.datetime | None = None) -> int:
        """Hand back the ones ``token`` holds, unattempted, due at ``at`` (or as they were)."""
        values: dict[str, Any] = {"locked_until": None, "claim_token": None}
        if at is not None:
            values["next_attempt_at"] = at
        return self.filter(claim_token=token).update(**values)

    def retry(self, now: dt.datetime) -> int:
        """Failed or cancelled ones pending again from ``now`` (attempts keep counting)."""
        return self.exclude(status__in=[Delivery.Status.SUCCEEDED, Delivery.Status.PENDING]).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            completed_at=None,
            locked_until=None,
            claim_token=None,
        )

    def cancel(self, now: dt.datetime) -> int:
        """Pending ones stopped for good."""
        return self.pending().update(
            status=Delivery.Status.CANCELLED,
            completed_at=now,
            next_attempt_at=None,
            locked_until=None,
            claim_token=None,
        )


class Delivery(models.Model):
    """One event on its way to one endpoint: pending until it succeeds, fails or is cancelled."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    # Indexed by hooks_delivery_endpoint (endpoint, created_at): a second index would only slow
    # down every insert of send_event.
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # A worker holds the delivery until this time; past it, the sweep may hand it to another.
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(
        _("last status code"), null=True, blank=True
    )
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="hooks_delivery_due",
            ),
            models.Index(fields=["endpoint", "created_at"], name="hooks_delivery_endpoint"),
            models.Index(fields=["status", "created_at"], name="hooks_delivery_status"),
            # Only rows a worker holds: new and finished deliveries cost this index nothing.
            models.Index(
                fields=["claim_token"],
                condition=Q(claim_token__isnull=False),
                name="hooks_delivery_claim",
            ),
            # No index on created_at alone: PostgreSQL would walk it for "an endpoint's latest
            # delivery" (the admin's endpoint list) instead of (endpoint, created_at). The admin
            # lists deliveries newest first by id.
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery and what came back."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(_("attempt"))
    url = models.URLField(_("URL"), max_length=2048)
    request_headers = models.JSONField(_("request headers"), default=dict)
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    response_headers = models.JSONField(_("response headers"), default=dict)
    response_body = models.TextField(_("response body"), blank=True)
    error = models.TextField(_("error"), blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


class InboundWebhookQuerySet(models.QuerySet["InboundWebhook"]):
    def claimable(self, now: dt.datetime) -> InboundWebhookQuerySet:
        """Calls whose handler may run now: failed, or received and not held by a live run."""
        free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
        return self.filter(
            Q(status=InboundWebhook.Status.FAILED) | Q(status=InboundWebhook.Status.RECEIVED), free
        )

    def claim(self, now: dt.datetime) -> int:
        """Hold these calls for one handler run (a conditional update: one claimant wins)."""
        lease = now + dt.timedelta(seconds=INBOUND_LEASE)
        return self.claimable(now).update(
            status=InboundWebhook.Status.RECEIVED, locked_until=lease, attempts=F("attempts") + 1
        )


class InboundWebhook(models.Model):
    """A verified webhook call this site received, stored before its handler runs."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        PROCESSED = "processed", _("processed")
        FAILED = "failed", _("failed")

    source = models.CharField(_("source"), max_length=100)
    # Whose secret verified the call, when a receiver's secret is chosen per request: the
    # tenant a ``TenantSecret`` named, "secret:<hash>" of the secrets a plain callable chose,
    # "" for a fixed secret. Duplicates are detected per (source, tenant): one tenant cannot
    # pre-store an id to have another's call dropped.
    tenant = models.CharField(_("tenant"), max_length=255, blank=True, default="")
    provider = models.CharField(_("provider"), max_length=50)
    # The sender's delivery id, or "sha256:<body hash>" when the scheme has none: the dedupe key.
    webhook_id = models.CharField(_("webhook id"), max_length=255)
    event_type = models.CharField(_("event type"), max_length=255, blank=True)
    # What the handler saw as ``hook.id`` and ``hook.timestamp`` when the call came in, so that
    # a run on the queue or a reprocess shows it the same call (webhook_id may be a body hash).
    sender_id = models.TextField(_("sender's id"), blank=True)
    signed_at = models.BigIntegerField(_("signed at"), null=True, blank=True)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.BinaryField(_("body"))
    # The body as the verifier parsed it (JSON, or a form for some Slack calls), for handlers.
    payload = models.JSONField(_("payload"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RECEIVED
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # While a handler runs, nobody else may run it; past this time the run is presumed dead.
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    error = models.TextField(_("error"), blank=True)
    handler = models.CharField(_("handler"), max_length=255, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    objects = InboundWebhookQuerySet.as_manager()

    class Meta:
        verbose_name = _("inbound webhook")
        verbose_name_plural = _("inbound webhooks")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "tenant", "webhook_id"], name="hooks_inbound_unique_tenant_id"
            )
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="hooks_inbound_status"),
            models.Index(fields=["source", "received_at"], name="hooks_inbound_source"),
            # The admin's list, newest first, unfiltered or by provider.
            models.Index(fields=["received_at"], name="hooks_inbound_received"),
            models.Index(fields=["provider", "received_at"], name="hooks_inbound_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.webhook_id}"


class IdempotencyKey(OwnedModel):
    """A REST API ``Idempotency-Key``: the first request's fingerprint and response, for 24 h."""

    key = models.CharField(max_length=255)
    # sha256 of method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    # None while the first request runs.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(
                fields=["owner_content_type", "owner_id", "key"], name="hooks_idempotency_key"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="hooks_idempotency_created")]

    def __str__(self) -> str:
        return self.key
