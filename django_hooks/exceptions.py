"""Every exception django-hooks raises on purpose; catch ``HooksError`` for all of them.

Each one also subclasses the builtin or Django exception it stands for (``ValueError``,
``ImproperlyConfigured``, ``LookupError``...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import requests
from django.core.exceptions import ImproperlyConfigured, ValidationError

from django_hooks.core.errors import (
    HooksError,
    InvalidCredentials,
    InvalidReceiver,
    InvalidSecret,
    InvalidSignature,
    MalformedHeader,
    MalformedPayload,
    MissingHeader,
    PayloadError,
    SignatureMismatch,
    TimestampOutOfTolerance,
    UnsafeURL,
)
from django_hooks.core.urlguard import BlockedAddress, PrivateHostName, UnresolvableHost

__all__ = [
    "BlockedAddress",
    "BlockedRequest",
    "ConfigurationError",
    "DecryptionError",
    "DrainTimeout",
    "EndpointNotReceiving",
    "EndpointValidationError",
    "HandlerNotFound",
    "HooksError",
    "InvalidArgument",
    "InvalidCredentials",
    "InvalidCursor",
    "InvalidEventData",
    "InvalidEventType",
    "InvalidReceiver",
    "InvalidSecret",
    "InvalidSignature",
    "MalformedHeader",
    "MalformedPayload",
    "MissingDependency",
    "MissingHeader",
    "PayloadError",
    "PrivateHostName",
    "QueueUnavailable",
    "ResponseBodyError",
    "ServerDidNotStart",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
    "UnresolvableHost",
    "UnsafeURL",
    "UnsavedOwner",
]


class ConfigurationError(HooksError, ImproperlyConfigured):
    """The ``DJANGO_HOOKS`` settings (or the settings they rely on) are unusable."""


class MissingDependency(HooksError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f'{package} is required here: pip install "django-hooks[{extra}]"')


class DecryptionError(HooksError):
    """A stored secret cannot be decrypted with any of ENCRYPTION_KEYS (was a key dropped?)."""


class InvalidEventType(HooksError, ValueError):
    """An event type is empty, too long, or uses characters outside ``[A-Za-z0-9_.:-]``."""


class InvalidEventData(PayloadError):
    """``send_event`` data does not match its type's declared JSON Schema (``VALIDATE_EVENT_DATA``).

    ``path`` names where, as ``data.items[0].price``; ``reason`` says what is wrong there.
    """

    def __init__(self, event_type: str, path: str, reason: str) -> None:
        super().__init__(
            f"The data of {event_type!r} does not match its declared schema at {path}: {reason}"
        )
        self.event_type = event_type
        self.path = path
        self.reason = reason


class InvalidArgument(HooksError, ValueError):
    """A function was called with a value it does not accept (an empty time window, a negative
    duration, a batch size below 1, an empty idempotency key); the message names the argument."""


class UnsavedOwner(InvalidArgument):
    """An owner passed to ``send_event`` or a query has no primary key yet: save it first."""


class EndpointValidationError(HooksError, ValidationError):
    """An endpoint's fields are invalid; ``message_dict`` names each field and reason."""


class EndpointNotReceiving(HooksError):
    """The endpoint is inactive or disabled, so nothing can be sent to it until it is enabled."""


class QueueUnavailable(HooksError, ConnectionError):
    """The queue's Redis could not be reached, so nothing was enqueued; the work waits in the
    database until ``hooks_sweep`` (or ``hooks_worker``'s sweep) enqueues it."""

    def __init__(self, queue: str, cause: BaseException | None = None) -> None:
        reason = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(
            f"could not reach the queue's Redis (queue {queue!r}{reason}); nothing was enqueued"
        )
        self.queue = queue


class HandlerNotFound(HooksError, LookupError):
    """A stored inbound call's handler cannot be found in this process (module not importable,
    or the view is no longer decorated); the message says what to do."""


class InvalidCursor(HooksError, ValueError):
    """A feed cursor was not one the feed handed out."""


class BlockedRequest(HooksError, requests.exceptions.ConnectionError):
    """The SSRF guard refused the request's URL or its host's addresses; nothing was sent."""


class ResponseBodyError(HooksError, requests.exceptions.ConnectionError):
    """The status line and headers arrived (``response``), the body did not: it timed out, was
    cut off or was malformed."""


class ServerDidNotStart(HooksError, RuntimeError):
    """``django_hooks.testing``: a server started for a test exited or never listened."""


class DrainTimeout(HooksError, TimeoutError):
    """``django_hooks.testing.drain`` gave up with deliveries still pending."""
