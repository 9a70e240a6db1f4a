# REFERENCE ONLY, NOT USED BY DJANGO-HOOKS: the delivery transport as it was before requests
# became the HTTP client (django_hooks/outbound/transport.py at commit f192214), driving urllib3
# directly. Kept verbatim below this note so benchmarks/transport_cost.py can measure what the
# requests-based transport costs against it in one run. Never import it from the package.
# ruff: noqa
# mypy: ignore-errors
"""The HTTP client delivery workers use: one keep-alive pool manager, SSRF-guarded sockets, hard
limits.

It drives urllib3 directly: requests' per-call work (merging settings, preparing the request,
hooks, cookies) costs about as much as the POST itself on a fast receiver (``make bench``: a bare
urllib3 loop makes 1.8 times the POSTs per second of a bare requests loop), and none of it
applies to a webhook POST with fixed headers, no cookies and no redirects.

Webhook URLs are typed in by users, so every new connection is resolved once through the
``URLGuard``, every address is vetted and the socket connects to the vetted address itself: a DNS
answer that changes afterwards (rebinding) cannot redirect it. TLS still uses the URL's host name
for SNI and certificate checks, because only socket creation is replaced.

With a proxy configured, connections go to the proxy, which then enforces egress (as Stripe's
smokescreen does); the target is still checked and resolved here before anything is sent.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import certifi
from urllib3 import PoolManager, ProxyManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    URLSchemeUnknown,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from django_hooks.core.errors import UnsafeURL
from django_hooks.core.urlguard import BlockedAddress, Target, UnresolvableHost, URLGuard

__all__ = ["HTTPResult", "Transport"]

MAX_RESPONSE_HEADERS = 100
MAX_ERROR_CHARS = 1000

#: Monotonic deadline of the request running in this thread/context; None outside ``post()``.
_DEADLINE: ContextVar[float | None] = ContextVar("django_hooks_transport_deadline", default=None)


@dataclass
class HTTPResult:
    """What one POST produced. ``error`` is "" whenever an HTTP response arrived intact.

    ``body`` is at most the read limit, with NUL bytes replaced by U+FFFD (see ``_without_nul``).
    """

    status_code: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""
    duration_ms: int = 0
    #: No answer came because the receiver could not be reached in time (timed out, refused
    #: or failed to connect, name not resolved): what opens the endpoint's circuit.
    unreachable: bool = False


# -- total deadline -------------------------------------------------------------------------------
# Socket timeouts apply per recv(), so a server trickling a byte at a time could hold a worker
# forever. Every read of a response (status line, headers, body) goes through _DeadlineReader,
# which re-arms the socket timeout with the time left and fails once the deadline has passed.


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("total deadline exceeded")
    return left


class _DeadlineReader(io.RawIOBase):
    """Raw reader over a (plain or TLS) socket that honours a total deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_time_left(self._deadline))
        return self._sock.recv_into(buffer)

    def fileno(self) -> int:
        return self._sock.fileno()


class _DeadlineSocket:
    """Just enough of a socket for ``http.client.HTTPResponse``, which only calls makefile()."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        deadline = _DEADLINE.get()
        if deadline is not None:
            sock = _DeadlineSocket(sock, deadline)
        super().__init__(sock, *args, **kwargs)


class _DeadlineMixin:
    """Connection behaviour shared by guarded and proxy connections: the total deadline."""

    response_class = _DeadlineResponse
    sock: socket.socket | None

    def send(self, data: Any) -> None:
        deadline = _DEADLINE.get()
        if deadline is not None and self.sock is not None:
            self.sock.settimeout(_time_left(deadline))
        super().send(data)  # type: ignore[misc]


# -- guarded sockets ------------------------------------------------------------------------------


def _connect(
    ip: str, port: int, timeout: float | None, source_address: Any, options: Any
) -> socket.socket:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in options or ():
            sock.setsockopt(*option)
        sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _GuardedMixin(_DeadlineMixin):
    """Replaces urllib3's socket creation: resolve once via the guard, connect to a vetted address.

    Only runs when a new connection is opened; a reused keep-alive connection was vetted then.
    """

    guard: URLGuard  # bound per Transport by a generated subclass (pool keys take no extra kwargs)
    _dns_host: str
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        try:
            addresses = self.guard.resolve(host, self.port)
        except UnsafeURL as exc:
            raise NewConnectionError(self, f"Refused by the URL guard: {exc}") from exc  # type: ignore[arg-type]
        deadline = _DEADLINE.get()
        error: OSError | None = None
        for ip in addresses:
            timeout = self.timeout if isinstance(self.timeout, int | float) else None
            try:
                if deadline is not None:
                    left = _time_left(deadline)
                    timeout = left if timeout is None else min(timeout, left)
                sock = _connect(ip, self.port, timeout, self.source_address, self.socket_options)
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from error
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error  # type: ignore[arg-type]


def _pool_classes(guard: URLGuard | None) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes whose connections are guarded by ``guard`` (or only deadline-aware if None)."""
    mixin: type = _DeadlineMixin if guard is None else _GuardedMixin
    attrs = {} if guard is None else {"guard": guard}
    http_conn = type("HooksHTTPConnection", (mixin, HTTPConnection), attrs)
    https_conn = type("HooksHTTPSConnection", (mixin, HTTPSConnection), attrs)
    return {
        "http": type(
            "HooksHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}
        ),
        "https": type(
            "HooksHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
        ),
    }


# -- errors ---------------------------------------------------------------------------------------


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from ``exc`` via causes, contexts, ``reason`` and args."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        pending.extend(e for e in linked if isinstance(e, BaseException))


def _ssl_detail(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc)


UNREACHABLE_PREFIXES = (
    "timed out",
    "connection refused",
    "could not resolve host",
    "connection error",
    "connection reset",
)


def _describe_error(exc: BaseException, timeout: float) -> str:
    """Turn whatever urllib3 or the socket raised into one short human sentence."""
    chain = list(_exception_chain(exc))

    def find(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    if (unsafe := find(UnsafeURL)) is not None:
        if isinstance(unsafe, UnresolvableHost):
            return "could not resolve host"
        if isinstance(unsafe, BlockedAddress):
            return f"blocked: {unsafe} (not in ALLOWED_NETWORKS)"
        return f"blocked: {unsafe}"
    if find(ConnectionRefusedError):
        return "connection refused"
    if find(socket.gaierror, NameResolutionError):
        return "could not resolve host"
    if (tls := find(ssl.SSLError)) is not None:
        return f"TLS error: {_ssl_detail(tls)}"
    if find(TimeoutError, ReadTimeoutError) is not None or (
        find(ConnectTimeoutError) is not None and find(NewConnectionError) is None
    ):
        return f"timed out after {timeout:g}s"
    if find(http.client.RemoteDisconnected):
        return "connection closed by the server without a response"
    if find(ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return "connection reset"
    if (tls_wrapped := find(Urllib3SSLError)) is not None:
        return f"TLS error: {tls_wrapped}"
    if (protocol := find(http.client.HTTPException)) is not None:
        detail, kind = str(protocol), type(protocol).__name__
        return f"protocol error: {detail if detail.startswith(kind) else f'{kind}: {detail}'}"
    if (protocol := find(ProtocolError)) is not None:
        return f"protocol error: {protocol}"
    if isinstance(exc, LocationValueError | URLSchemeUnknown):
        return f"invalid URL: {exc}"
    os_error = find(OSError)
    if isinstance(os_error, OSError):
        return f"connection error: {os_error.strerror or os_error}"
    return f"error: {exc}"


# -- the transport --------------------------------------------------------------------------------


class Transport:
    """Sends webhook POSTs through one long-lived, SSRF-guarded urllib3 pool manager."""

    def __init__(
        self,
        *,
        guard: URLGuard,
        timeout: float = 15,
        read_limit: int = 65536,
        proxy: str | None = None,
        user_agent: str = "django-hooks",
        ca_certs: str | None = None,
        max_connections: int = 1,
    ) -> None:
        self.guard = guard
        self.timeout = float(timeout)
        self.read_limit = read_limit
        self.proxy = proxy
        self._checked_urls: dict[str, Target] = {}  # check_url is pure: skip it for repeat URLs
        self._headers = {"User-Agent": user_agent, "Accept": "*/*"}
        self._timeout = Timeout(connect=self.timeout, read=self.timeout)
        options: dict[str, Any] = {
            # Keep-alive connections kept per host: one per attempt a worker has in flight.
            "maxsize": max(1, max_connections),
            "num_pools": 32,
            "retries": False,
            "cert_reqs": "CERT_REQUIRED",
            # certifi's bundle, as requests uses, unless the caller names another.
            "ca_certs": ca_certs or certifi.where(),
        }
        self._manager: PoolManager
        if proxy:
            # The proxy is operator-configured and may well sit on a private network: only the
            # deadline applies to connections to it; targets are checked before sending.
            self._manager = ProxyManager(proxy, **options)
            self._manager.pool_classes_by_scheme = _pool_classes(None)
        else:
            self._manager = PoolManager(**options)
            self._manager.pool_classes_by_scheme = _pool_classes(guard)

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled keep-alive connections."""
        self._manager.clear()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> HTTPResult:
        """POST ``body`` to ``url``; never raises for network or HTTP problems (see ``error``)."""
        started = time.perf_counter()
        token = _DEADLINE.set(time.monotonic() + self.timeout)
        try:
            return self._post(url, body, headers, started)
        finally:
            _DEADLINE.reset(token)

    def _check_url(self, url: str) -> Target:
        target = self._checked_urls.get(url)
        if target is None:
            target = self.guard.check_url(url)
            if len(self._checked_urls) >= 4096:
                self._checked_urls.clear()
            self._checked_urls[url] = target
        return target

    def _post(self, url: str, body: bytes, headers: dict[str, str], started: float) -> HTTPResult:
        def failed(exc: BaseException, status: int | None = None, **kw: Any) -> HTTPResult:
            # The text may quote the receiver's bytes (a bad status line): keep it short, storable.
            error = _describe_error(exc, self.timeout).replace("\x00", "\ufffd")
            return HTTPResult(
                status_code=status,
                error=error[:MAX_ERROR_CHARS],
                duration_ms=_elapsed_ms(started),
                unreachable=status is None and error.startswith(UNREACHABLE_PREFIXES),
                **kw,
            )

        try:
            target = self._check_url(url)
            if self.proxy:
                # The proxy resolves the name itself; this catches what we can before sending.
                self.guard.resolve(target.host, target.port)
            response = self._manager.urlopen(
                "POST",
                url,
                body=body,
                headers={**self._headers, **headers, "Accept-Encoding": "identity"},
                timeout=self._timeout,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
            )
        except Exception as exc:  # every failure becomes an HTTPResult
            return failed(exc)

        response_headers = _plain_headers(response.headers)
        try:
            # decode_content=False: we report bytes as sent and never inflate a gzip bomb.
            data = response.read(self.read_limit + 1, decode_content=False)
        except Exception as exc:
            _drop_connection(response)
            return failed(exc, response.status, headers=response_headers)
        if not response.closed:
            # Past the limit we stop rather than drain. A response read to its end has already
            # gone back to the pool for reuse.
            _drop_connection(response)
        return HTTPResult(
            status_code=response.status,
            headers=response_headers,
            body=_without_nul(data[: self.read_limit]),
            error="",
            duration_ms=_elapsed_ms(started),
        )


def _drop_connection(response: Any) -> None:
    """Close a response's connection and hand the pool its (now empty) slot back."""
    response.close()
    response.release_conn()


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _without_nul(data: bytes) -> bytes:
    """``data`` with NUL bytes replaced by U+FFFD: PostgreSQL text and JSON cannot hold NUL, so a
    receiver answering with one would otherwise make the whole batch's attempt log unwritable."""
    return data.replace(b"\x00", "\ufffd".encode()) if b"\x00" in data else data


def _plain_headers(headers: Any) -> dict[str, str]:
    """Lowercase names; repeated headers joined with ", " (HTTPHeaderDict does the joining)."""
    plain: dict[str, str] = {}
    for name in headers:
        if len(plain) >= MAX_RESPONSE_HEADERS:
            break
        plain[name.lower().replace("\x00", "\ufffd")] = headers[name].replace("\x00", "\ufffd")
    return plain
