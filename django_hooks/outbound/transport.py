"""The HTTP client delivery workers use: requests, with every safety rule in its transport adapter.

``GuardedAdapter`` is a ``requests.adapters.HTTPAdapter`` (requests' documented extension point)
that

- checks every URL with the ``URLGuard`` and, for every new connection, resolves the host once,
  vets every address and connects the socket to the vetted address itself: a DNS answer that
  changes afterwards (rebinding) cannot redirect it. TLS still uses the URL's host name for SNI
  and certificate checks, because only socket creation is replaced;
- holds each request to a total deadline (connect to last byte), not only per-read timeouts;
- reads at most ``read_limit`` bytes of a response body, raw, and drops the connection past it;
- never retries and never follows redirects.

``Transport`` sends webhook POSTs through one ``requests.Session`` with that adapter mounted for
``http://`` and ``https://``. It builds the ``PreparedRequest`` itself and calls
``Session.send``: ``Session.request``'s per-call merging (environment proxies, settings, cookies)
costs about as much as a POST to a fast receiver and none of it applies to a webhook. Test
suites that mock requests (``responses``, ``requests-mock``) still see every POST.

With a proxy, connections go to the proxy, which then enforces egress (as Stripe's smokescreen
does); the target is still checked and resolved here before anything is sent, by the very name
the proxy is asked for, and no per-request header meant for a proxy (``Proxy-*``, ``Forwarded``,
``X-Forwarded-*``, ``Via``) is sent.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import ContextVar
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema, RequestException
from requests.utils import DEFAULT_CA_BUNDLE_PATH, default_headers, select_proxy
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
from urllib3.util import parse_url
from urllib3.util.retry import Retry

from django_hooks.core.errors import UnsafeURL
from django_hooks.core.urlguard import BlockedAddress, Target, UnresolvableHost, URLGuard
from django_hooks.exceptions import BlockedRequest, ResponseBodyError

__all__: list[str] = []

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
        deadline = _DEADLINE.get()
        try:
            addresses = _resolve_within(self.guard, host, self.port, deadline)
        except UnsafeURL as exc:
            raise NewConnectionError(self, f"Refused by the URL guard: {exc}") from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Resolving {host} timed out") from exc
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


# Name resolution under the same total deadline: getaddrinfo has no timeout of its own (a slow
# resolver could hold an attempt far past TIMEOUT), so it runs on a small pool of threads and the
# attempt waits only for the time it has left. A lookup that outlives its attempt finishes in
# the background and is discarded.
_resolvers: ThreadPoolExecutor | None = None
_resolvers_lock = threading.Lock()
RESOLVER_THREADS = 8


def _resolve_within(guard: URLGuard, host: str, port: int, deadline: float | None) -> list[str]:
    if deadline is None or _parse_literal(host):
        return guard.resolve(host, port)
    global _resolvers
    with _resolvers_lock:
        if _resolvers is None:
            _resolvers = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="django-hooks-dns")
        pool = _resolvers
    lookup = pool.submit(guard.resolve, host, port)
    try:
        return lookup.result(timeout=_time_left(deadline))
    except FutureTimeout:
        lookup.cancel()
        raise TimeoutError(f"resolving {host} took longer than the attempt's deadline") from None


def _parse_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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


# -- names and headers as sent --------------------------------------------------------------------


def _sent_host(url: str) -> str:
    """The host name exactly as urllib3 sends it (request line or CONNECT), brackets removed."""
    return (parse_url(url).host or "").strip("[]")


#: Per-request headers that speak to a proxy rather than the receiver: never sent on behalf of
#: an endpoint (an operator's proxy credentials belong in the session or the PROXY URL).
_PROXY_HEADER_PREFIXES = ("proxy-", "x-forwarded-")
_PROXY_HEADERS = frozenset({"forwarded", "via", "x-real-ip"})


def _proxy_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _PROXY_HEADERS or lowered.startswith(_PROXY_HEADER_PREFIXES)


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
    """Turn whatever requests, urllib3 or the socket raised into one short human sentence."""
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
    invalid = find(LocationValueError, URLSchemeUnknown, InvalidURL, InvalidSchema, MissingSchema)
    if invalid is not None:
        return f"invalid URL: {invalid}"
    # requests' exceptions are OSErrors too: name what they wrap, not the wrapper.
    os_error = next(
        (e for e in chain if isinstance(e, OSError) and not isinstance(e, RequestException)), None
    )
    if isinstance(os_error, OSError):
        return f"connection error: {os_error.strerror or os_error}"
    return f"error: {exc}"


# -- the adapter ----------------------------------------------------------------------------------


class ClientIdentity:
    """A TLS client certificate and key held in memory, presented by one endpoint's requests
    (``Transport.post(..., cert=...)``): an ``ssl.SSLContext`` per server-verification setting,
    so its connections get their own keep-alive pool. Python's ``ssl`` loads a key only from a
    file: each is written to a private temporary file, loaded, and deleted at once."""

    def __init__(self, certificate: str, private_key: str) -> None:
        self._pem = (certificate, private_key)
        self._contexts: dict[bool | str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "<ClientIdentity>"

    def context(self, verify: bool | str) -> ssl.SSLContext:
        with self._lock:
            context = self._contexts.get(verify)
            if context is None:
                context = self._contexts[verify] = self._build(verify)
            return context

    def _build(self, verify: bool | str) -> ssl.SSLContext:
        if verify is False:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            where = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
            if os.path.isdir(where):
                context = ssl.create_default_context(capath=where)
            else:
                context = ssl.create_default_context(cafile=where)
        with tempfile.TemporaryDirectory(prefix="django-hooks-") as directory:  # mode 0700
            path = os.path.join(directory, "identity.pem")
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(self._pem[0].strip() + "\n" + self._pem[1].strip() + "\n")
            context.load_cert_chain(path)
        return context


#: Session cookies would carry one receiver's cookies to the next (and grow without bound).
_NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])
_NO_RETRIES = Retry(0, read=False, redirect=False)


def _total_seconds(timeout: Any) -> float | None:
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return float(timeout)
    return None


class GuardedAdapter(HTTPAdapter):
    """A requests transport adapter that connects only to addresses the guard vetted, within a
    total deadline, reads at most ``read_limit`` bytes of a response, and never retries.

    ``timeout`` is the default total deadline in seconds; a number passed to ``send()``
    replaces it for that request. The adapter never follows a redirect itself; a session told
    to (``allow_redirects``, which ``Transport`` never sets) sends every hop through it again,
    so the guard still vets each one.
    """

    def __init__(
        self,
        guard: URLGuard,
        *,
        timeout: float = 15,
        read_limit: int = 65536,
        pool_connections: int = 32,
        pool_maxsize: int = 10,
    ) -> None:
        self.guard = guard
        self.timeout = float(timeout)
        self.read_limit = read_limit
        self._checked_urls: dict[str, Target] = {}  # check_url is pure: skip it for repeat URLs
        self._proxy_lock = threading.Lock()
        super().__init__(
            pool_connections=pool_connections,
            pool_maxsize=max(1, pool_maxsize),
            max_retries=_NO_RETRIES,
            pool_block=False,
        )

    def __repr__(self) -> str:
        return f"<GuardedAdapter {self.guard!r} timeout={self.timeout:g}s>"

    # -- urllib3 plumbing: guarded connections directly, deadline-only ones to a proxy ------------

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **kw: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.guard)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # The proxy is operator-configured and may well sit on a private network: only the
        # deadline applies to connections to it; targets are vetted in send() first.
        with self._proxy_lock:
            fresh = proxy not in self.proxy_manager
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if fresh and not proxy.lower().startswith("socks"):
                manager.pool_classes_by_scheme = _pool_classes(None)
            return manager

    # -- per-endpoint client certificates ---------------------------------------------------------

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(cert, ClientIdentity):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, None
        )
        # The context holds the CA bundle and the identity: urllib3 must not load files again.
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["ssl_context"] = cert.context(verify)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if isinstance(cert, ClientIdentity):
            super().cert_verify(conn, url, verify, None)
            conn.ca_certs = conn.ca_cert_dir = None
            return
        super().cert_verify(conn, url, verify, cert)

    # -- the request --------------------------------------------------------------------------

    def check_url(self, url: str) -> Target:
        """The guard's syntax check of ``url`` (no DNS), cached; raises ``UnsafeURL``."""
        target = self._checked_urls.get(url)
        if target is None:
            target = self.guard.check_url(url)
            if len(self._checked_urls) >= 4096:
                self._checked_urls.clear()
            self._checked_urls[url] = target
        return target

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        try:
            target = self.check_url(url)
            if proxies and select_proxy(url, proxies):
                # The proxy resolves the name itself: vet what it will find before sending, by
                # the name it will be asked for (trailing dot and all), not a normalised one.
                self.guard.resolve(_sent_host(url), target.port)
        except UnsafeURL as exc:
            raise BlockedRequest(exc, request=request) from exc
        total = _total_seconds(timeout) or self.timeout
        token = _DEADLINE.set(time.monotonic() + total)
        try:
            return super().send(
                request,
                stream=stream,
                timeout=total if timeout is None else timeout,
                verify=verify,
                cert=cert,
                proxies=proxies,
            )
        finally:
            _DEADLINE.reset(token)

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """requests' Response, with the body already read: at most ``read_limit`` bytes, raw
        (a gzip bomb is never inflated), under the deadline. Past the limit the connection is
        dropped rather than drained; a body read to its end has gone back to the pool."""
        response = super().build_response(req, resp)
        try:
            data = resp.read(self.read_limit + 1, decode_content=False)
        except Exception as exc:
            _drop_connection(resp)
            raise ResponseBodyError(exc, request=req, response=response) from exc
        if not resp.closed:
            _drop_connection(resp)
        # What requests itself does once it has read a body: later .content/.text calls (and
        # Session.send's own reads) use these bytes and never touch the socket again.
        response._content = data[: self.read_limit]
        response._content_consumed = True
        return response


# -- the transport --------------------------------------------------------------------------------


class Transport:
    """Sends webhook POSTs through one long-lived ``requests.Session`` whose ``http://`` and
    ``https://`` adapter is a ``GuardedAdapter``. Thread-safe: one session, one pool.

    ``session`` (optional) is a session to take over, as ``SESSION`` configures it: its
    ``proxies``, ``verify``, ``cert`` and headers apply; its adapters are replaced, environment
    settings (``trust_env``) and cookies are turned off. ``proxy`` replaces its proxies and
    ``ca_certs`` its ``verify``.
    """

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
        session: requests.Session | None = None,
    ) -> None:
        self.guard = guard
        self.timeout = float(timeout)
        self.read_limit = read_limit
        self.proxy = proxy
        self.session = session = session if session is not None else requests.Session()
        # No HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE or .netrc from the environment.
        session.trust_env = False
        session.cookies = RequestsCookieJar(policy=_NO_COOKIES)
        # One pool of keep-alive connections per host, one per attempt a worker has in flight.
        self.adapter = GuardedAdapter(
            guard, timeout=self.timeout, read_limit=read_limit, pool_maxsize=max_connections
        )
        # Every adapter the session came with goes, so no prefix can route around the guard.
        for adapter in session.adapters.values():
            adapter.close()
        session.adapters.clear()
        session.mount("https://", self.adapter)
        session.mount("http://", self.adapter)

        self._proxies = {"http": proxy, "https": proxy} if proxy else dict(session.proxies)
        self._verify: bool | str = ca_certs or session.verify
        self._cert = session.cert
        defaults = default_headers()
        own = {k: v for k, v in session.headers.items() if defaults.get(k) != v}
        self._headers = {"User-Agent": user_agent, "Accept": "*/*", **own}
        self._headers.pop("Accept-Encoding", None)
        self._urls: dict[str, str] = {}  # prepared (IDNA, requoted) form of each endpoint URL

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:  # no headers: a session's may carry credentials
        return f"<Transport {self.guard!r} timeout={self.timeout:g}s>"

    def close(self) -> None:
        """Close pooled keep-alive connections."""
        self.session.close()

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, cert: ClientIdentity | None = None
    ) -> HTTPResult:
        """POST ``body`` to ``url``; never raises for network or HTTP problems (see ``error``).
        ``cert``: a client certificate for this request, instead of the session's."""
        started = time.perf_counter()

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

        arrived: list[requests.Response] = []
        try:
            # Checked here too, so a test suite's mocked session refuses what a real one would.
            self.adapter.check_url(url)
            prepared = self._prepare(url, body, headers, arrived.append)
            response = self.session.send(
                prepared,
                stream=True,
                allow_redirects=False,
                timeout=self.timeout,
                proxies=self._proxies,
                verify=self._verify,
                cert=cert or self._cert,
            )
        except ResponseBodyError as exc:
            partial = exc.response
            if partial is None:
                return failed(exc)
            return failed(exc, partial.status_code, headers=_plain_headers(partial.headers))
        except Exception as exc:  # every failure becomes an HTTPResult
            if not arrived:
                return failed(exc)
            # The response arrived; requests failed afterwards (e.g. on a malformed Location,
            # while working out the redirect we would not have followed anyway).
            response = arrived[0]

        response_headers = _plain_headers(response.headers)
        try:
            data = response.content or b""  # read already, and capped, by GuardedAdapter
        except Exception as exc:
            return failed(exc, response.status_code, headers=response_headers)
        return HTTPResult(
            status_code=response.status_code,
            headers=response_headers,
            body=_without_nul(data[: self.read_limit]),
            error="",
            duration_ms=_elapsed_ms(started),
        )

    def _prepare(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        on_response: Callable[[requests.Response], None],
    ) -> requests.PreparedRequest:
        """The request, prepared as requests would for these arguments, minus the work that
        cannot apply (auth, cookies, params, file bodies): endpoint URLs repeat, so their
        prepared form is cached."""
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared_url = self._urls.get(url)
        if prepared_url is None:
            prepared.prepare_url(url, None)
            prepared_url = prepared.url or url
            if len(self._urls) >= 4096:
                self._urls.clear()
            self._urls[url] = prepared_url
        prepared.url = prepared_url
        refused = sorted(name for name in headers if _proxy_header(name))
        if refused:
            raise UnsafeURL(f"headers meant for a proxy are never sent: {', '.join(refused)}")
        prepared.prepare_headers({**self._headers, **headers})  # validates names and values
        # Identity, whatever the endpoint's headers say: bodies are stored as sent and a gzip
        # bomb stays a few KiB of bytes.
        prepared.headers["Accept-Encoding"] = "identity"
        prepared.headers["Content-Length"] = str(len(body))
        prepared.body = body
        prepared.prepare_cookies(self.session.cookies)  # always empty (see _NO_COOKIES)
        prepared.hooks = {"response": [lambda response, **kw: on_response(response)]}
        return prepared


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
    """Lowercase names; repeated headers joined with ", " (urllib3 joins them, requests keeps
    that)."""
    plain: dict[str, str] = {}
    for name in headers:
        if len(plain) >= MAX_RESPONSE_HEADERS:
            break
        plain[name.lower().replace("\x00", "\ufffd")] = headers[name].replace("\x00", "\ufffd")
    return plain
