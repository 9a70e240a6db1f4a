"""The HTTP transport, built from settings once per process (rebuilt when they change)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import requests
from django.utils.module_loading import import_string

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import ConfigurationError
from django_hooks.internal.urlguard import resolver, url_guard, use_resolver
from django_hooks.outbound.transport import Transport

__all__ = ["use_resolver"]  # documented in docs/testing.md

_lock = threading.RLock()
_cache: dict[str, tuple[Any, Any]] = {}


def _cached(name: str, key: Any, build: Any) -> Any:
    with _lock:
        cached = _cache.get(name)
        if cached is None or cached[0] != key:
            if cached is not None and hasattr(cached[1], "close"):
                cached[1].close()
            cached = (key, build())
            _cache[name] = cached
        return cached[1]


def configured_session() -> requests.Session | None:
    """A new session from the ``SESSION`` setting, or None when it is not set.

    Raises ``ConfigurationError`` when the setting does not name a callable returning a
    ``requests.Session`` (system check ``django_hooks.E007`` reports the same).
    """
    path = hooks_settings.SESSION
    if path is None:
        return None
    try:
        factory = import_string(path) if isinstance(path, str) else path
    except ImportError as exc:
        raise ConfigurationError(f"DJANGO_HOOKS['SESSION'] cannot be imported: {exc}") from exc
    if not callable(factory):
        raise ConfigurationError(f"DJANGO_HOOKS['SESSION'] is not callable: {path!r}")
    session = factory()
    if not isinstance(session, requests.Session):
        raise ConfigurationError(
            f"DJANGO_HOOKS['SESSION'] ({path!r}) returned {type(session).__name__}, "
            "not a requests.Session."
        )
    return session


_standing_in: list[Any] = []  # use_transport's, innermost last


@contextlib.contextmanager
def use_transport(stand_in: Any) -> Iterator[None]:
    """Send through ``stand_in`` (an object with ``post(url, body, headers) -> HTTPResult``)
    inside the block, from every thread: ``django_hooks.testing.webhook_outbox`` uses it."""
    _standing_in.append(stand_in)
    try:
        yield
    finally:
        _standing_in.remove(stand_in)


def transport() -> Transport:
    """One HTTP session per worker process (and per thread-safe settings state)."""
    if _standing_in:
        return _standing_in[-1]
    key = (
        tuple(hooks_settings.ALLOWED_NETWORKS),
        hooks_settings.TIMEOUT,
        hooks_settings.PROXY,
        hooks_settings.USER_AGENT,
        hooks_settings.RESPONSE_READ_LIMIT,
        resolver(),
        bool(hooks_settings.HTTPS_ONLY),
        hooks_settings.CONCURRENCY,
        hooks_settings.SESSION,
    )
    return _cached(
        "transport",
        key,
        lambda: Transport(
            guard=url_guard(),
            timeout=hooks_settings.TIMEOUT,
            read_limit=hooks_settings.RESPONSE_READ_LIMIT,
            proxy=hooks_settings.PROXY,
            user_agent=hooks_settings.USER_AGENT,
            max_connections=int(hooks_settings.CONCURRENCY),
            session=configured_session(),
        ),
    )


def reset() -> None:
    """Close the cached transport (its keep-alive connections)."""
    with _lock:
        for _key, value in _cache.values():
            if hasattr(value, "close"):
                value.close()
        _cache.clear()
