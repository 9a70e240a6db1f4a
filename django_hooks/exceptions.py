"""Every exception django-hooks raises on purpose; catch ``HooksError`` for all of them."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured, ValidationError

from django_hooks.core.errors import (
    HooksError,
    InvalidCredentials,
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

__all__ = [
    "ConfigurationError",
    "DecryptionError",
    "EndpointNotReceiving",
    "EndpointValidationError",
    "HandlerNotFound",
    "HooksError",
    "InvalidCredentials",
    "InvalidEventType",
    "InvalidSecret",
    "InvalidSignature",
    "MalformedHeader",
    "MalformedPayload",
    "MissingDependency",
    "MissingHeader",
    "PayloadError",
    "QueueUnavailable",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
    "UnsafeURL",
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
    """A stored inbound call's handler cannot be found in this worker (code changed since it
    started, or the view was renamed or removed); the call is retried on the schedule."""
