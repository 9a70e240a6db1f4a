"""The ``DJANGO_HOOKS`` setting, read through one lazy object: ``hooks_settings``.

    from django_hooks.conf import hooks_settings
    hooks_settings.TIMEOUT

Values are read on first access and cached; ``override_settings(DJANGO_HOOKS=...)`` and any other
``setting_changed`` for ``DJANGO_HOOKS`` clears the cache. Unknown keys are an error.
Nothing here imports the rest of the package: this module is the bottom layer.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings

from django_hooks.exceptions import ConfigurationError

__all__ = ["hooks_settings"]

DEFAULTS: dict[str, Any] = {
    # django-rq queue that carries deliveries (a key of RQ_QUEUES).
    "QUEUE": "default",
    # Seconds before each retry; one entry per retry, so at most 1 + len() attempts.
    "RETRY_SCHEDULE": [5, 300, 1800, 7200, 18000, 36000, 36000],
    # Seconds allowed for one attempt: connect, send, and read the response.
    "TIMEOUT": 15,
    # CIDRs that may be targeted despite being private (e.g. "127.0.0.0/8").
    "ALLOWED_NETWORKS": [],
    # Fernet keys, newest first; empty = derived from SECRET_KEY (and SECRET_KEY_FALLBACKS).
    "ENCRYPTION_KEYS": [],
    # An endpoint failing continuously this many seconds is disabled.
    "DISABLE_AFTER": 5 * 24 * 3600,
    # Seconds of continuous failure after which an endpoint's owner is warned, each once per
    # failing spell (the endpoint_failing signal, the endpoint.failing operational event, and
    # an email with OWNER_EMAILS); each below DISABLE_AFTER.
    "FAILURE_WARNINGS": [3600, 24 * 3600],
    # Largest encoded payload send_event accepts, in bytes.
    "MAX_PAYLOAD_BYTES": 256 * 1024,
    # Attempts one worker process keeps in flight at once (threads inside the delivery job).
    # 64: against receivers answering in 100 ms one process then spends its core on
    # signing, HTTP and bookkeeping rather than waiting (see docs/operations.md, sizing).
    "CONCURRENCY": 64,
    # Attempts in flight to one endpoint at once, across every worker; Endpoint.max_concurrency
    # overrides it per endpoint. A hanging endpoint holds at most this many slots.
    "ENDPOINT_CONCURRENCY": 16,
    # Seconds a worker's claim on a delivery lasts without renewal; a live worker renews it
    # every third of that, so a killed worker's deliveries are taken over within one lease.
    "LEASE": 30,
    # Most deliveries one claim takes and one results write holds.
    "BATCH_SIZE": 50,
    # Seconds an old secret keeps signing after rotate_secret().
    "SECRET_GRACE_PERIOD": 24 * 3600,
    # Explicit proxy URL for outgoing webhooks; environment proxies are never used.
    "PROXY": None,
    # Dotted path to a callable returning the requests.Session webhooks are sent with (its
    # proxies, cert, verify and headers apply; the SSRF guard's adapter is mounted on it).
    "SESSION": None,
    # User-Agent header of outgoing webhooks.
    "USER_AGENT": "django-hooks",
    # Bytes of a response body read (the rest is dropped) and bytes stored on the attempt.
    "RESPONSE_READ_LIMIT": 64 * 1024,
    "RESPONSE_STORE_LIMIT": 4 * 1024,
    # Models whose changes become events: {"shop.Order": {"prefix": "order", "serializer": ...}}.
    "MODEL_EVENTS": {},
    # Receivers configured in settings, served at hooks/in/<source>/ by django_hooks.inbound.urls:
    # {"github": {"provider": "github", "secret": "...", "handler": "app.hooks.on_github"}}.
    "INBOUND": {},
    # Queue and retry schedule of inbound handlers run with run_async=True (None: QUEUE and
    # RETRY_SCHEDULE, as deliveries).
    "INBOUND_QUEUE": None,
    "INBOUND_RETRY_SCHEDULE": None,
    # Largest inbound body accepted, in bytes (413 above it).
    "INBOUND_MAX_BODY_BYTES": 1024 * 1024,
    # Seconds stored calls and finished events are kept before hooks_prune deletes them
    # (None keeps them forever).
    "INBOUND_RETENTION": 30 * 24 * 3600,
    "EVENT_RETENTION": 90 * 24 * 3600,
    # Event type of the test events sent from the admin, the API and hooks_send_test.
    "TEST_EVENT_TYPE": "webhook.test",
    # The event type catalogue: {"order.paid": {"description": ..., "schema": {...}}} or names.
    "EVENT_TYPES": {},
    # Refuse to send, or subscribe endpoints to, event types that are not declared.
    "STRICT_EVENT_TYPES": False,
    # Check send_event's data against its type's declared JSON Schema (tests and development;
    # needs the jsonschema extra). A mismatch raises InvalidEventData naming the path.
    "VALIDATE_EVENT_DATA": False,
    # REST API: dotted path to callable(request) -> owner or None (None: the request is refused).
    "API_OWNER": "django_hooks.api.permissions.authenticated_user",
    # The REST API's event feed (events/feed/, events/stream/): "auto" keeps its positions
    # exact and wakes its readers when rest_framework is installed; False saves every commit
    # that work on sites that never read it.
    "FEED": "auto",
    # Event feed: seconds an event waits before the feed serves it (see django_hooks.feed).
    "FEED_LAG": 0.5,
    # Server-sent events: seconds between heartbeat comments, and how long one stream lasts.
    "FEED_HEARTBEAT": 15,
    "FEED_STREAM_LIFETIME": 300,
    # Long polls and event streams one owner may hold open at once, across processes (429 above).
    "FEED_CONNECTIONS_PER_OWNER": 5,
    # Refuse http:// endpoint URLs (saving and delivering): payloads and signatures stay private.
    "HTTPS_ONLY": False,
    # Send endpoint.disabled and message.attempt.exhausted events to the owner's endpoints
    # subscribed to them (as Svix's operational webhooks).
    "OPERATIONAL_EVENTS": False,
    # Customer portal: seconds the session opened by a signed link lasts, and the origins
    # allowed to show portal pages opened by a link in a frame (besides the site itself).
    "PORTAL_SESSION_AGE": 3600,
    "PORTAL_FRAME_ANCESTORS": [],
    # Email an endpoint's owner at each FAILURE_WARNINGS threshold and when the endpoint is
    # disabled for failing (Django's mail framework, templates under django_hooks/email/).
    "OWNER_EMAILS": False,
    # Dotted path to callable(endpoint) -> address, list of addresses or None; None: the
    # owner's email attribute (a user's email).
    "OWNER_EMAIL_ADDRESS": None,
    # OpenTelemetry spans and metrics (pip install "django-hooks[otel]"); False imports nothing.
    "TELEMETRY": False,
}


class HooksSettings:
    """Attribute access to ``settings.DJANGO_HOOKS`` merged over ``DEFAULTS``."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            value = getattr(settings, "DJANGO_HOOKS", None) or {}
            if not isinstance(value, dict):
                raise ConfigurationError(
                    f"DJANGO_HOOKS must be a dict, not {type(value).__name__}."
                )
            unknown = sorted(set(value) - set(self.defaults), key=str)
            if unknown:
                described = [self.describe_unknown(key) for key in unknown]
                message = f"Unknown DJANGO_HOOKS key(s): {'; '.join(described)}."
                if not all("did you mean" in text for text in described):
                    message += f" Known keys: {', '.join(sorted(self.defaults))}."
                raise ConfigurationError(message)
            self._user_settings = value
        return self._user_settings

    def describe_unknown(self, key: Any) -> str:
        """``'TIMOUT' (did you mean 'TIMEOUT'?)``: the closest known key, when one is close."""
        close = difflib.get_close_matches(str(key).upper(), self.defaults, n=1, cutoff=0.6)
        return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid django-hooks setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            del self._user_settings


hooks_settings = HooksSettings(DEFAULTS)


def reload_hooks_settings(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver (connected in ``apps.ready``). Caches built from settings
    (encryption keys, queues) are keyed on what they read, so only this object resets."""
    if setting == "DJANGO_HOOKS":
        hooks_settings.reload()
