"""The SSRF guard built from settings: every endpoint URL (saving) and every connection
(sending) goes through it. The checks themselves are pure, in ``django_hooks.core.urlguard``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django_hooks.conf import hooks_settings
from django_hooks.core.urlguard import Resolver, URLGuard, requests_host_name

__all__: list[str] = []

_lock = threading.Lock()
_guard: tuple[object, URLGuard] | None = None
_resolver: Resolver | None = None  # None: the system resolver (getaddrinfo)


def resolver() -> Resolver | None:
    """The resolver in use: ``use_resolver``'s, or None for the system's."""
    return _resolver


def url_guard() -> URLGuard:
    """The guard for the current settings (rebuilt when they change). It encodes Unicode host
    names as requests sends them, so the name vetted when saving is the name delivered to."""
    global _guard
    networks, https_only = tuple(hooks_settings.ALLOWED_NETWORKS), bool(hooks_settings.HTTPS_ONLY)
    key = (networks, _resolver, https_only)
    cached = _guard
    if cached is None or cached[0] != key:
        with _lock:
            guard = URLGuard(
                networks, _resolver, https_only=https_only, encode_host=requests_host_name
            )
            cached = _guard = (key, guard)
    return cached[1]


@contextlib.contextmanager
def use_resolver(resolver: Resolver) -> Iterator[None]:
    """Resolve endpoint host names with ``resolver(host, port) -> [ip, ...]`` inside the block.

    For tests (fake DNS, rebinding) and for hosts that must use their own DNS; it replaces the
    lookup only, every answer is still vetted by the guard. Process-wide, not per thread.
    """
    global _resolver
    with _lock:
        previous, _resolver = _resolver, resolver
    try:
        yield
    finally:
        with _lock:
            _resolver = previous
