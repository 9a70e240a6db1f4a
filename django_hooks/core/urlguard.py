"""SSRF guard: may a user-typed webhook URL, and the addresses behind it, be called?

Pure stdlib on purpose: forms, the API and the delivery transport share it, and it is tested
without Django or a network.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

import idna

from django_hooks.core.errors import UnsafeURL

__all__: list[str] = []

Network = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address
#: ``resolver(host, port) -> ["ip", ...]``; raises ``OSError`` when the name does not resolve.
Resolver = Callable[[str, int], list[str]]


class BlockedAddress(UnsafeURL):
    """The host is, or resolves to, an address that is neither public nor allow-listed."""


class PrivateHostName(UnsafeURL):
    """The host name only reaches internal hosts (``localhost``, ``.local``, one label)."""


class UnresolvableHost(UnsafeURL):
    """The host name did not resolve (it may be a typo, or DNS may be down)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The parts of a checked URL that decide where a request would go."""

    scheme: str
    host: str  # IDNA-encoded, lowercase, no trailing dot; IPs in canonical form, IPv6 unbracketed
    port: int
    is_ip_literal: bool


def parse_networks(cidrs: Iterable[str | Network]) -> tuple[Network, ...]:
    """Parse an allow-list of CIDR strings, failing loudly on the first bad entry."""
    networks: list[Network] = []
    for entry in cidrs:
        if isinstance(entry, IPv4Network | IPv6Network):
            networks.append(entry)
            continue
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(
                f"invalid network {entry!r} in allowed networks: expected a CIDR string"
            )
        try:
            networks.append(ip_network(entry.strip()))
        except ValueError as exc:
            raise ValueError(f"invalid network {entry!r} in allowed networks: {exc}") from exc
    return tuple(networks)


def _networks(table: Iterable[tuple[str, str]]) -> tuple[tuple[Network, str], ...]:
    return tuple((ip_network(cidr), label) for cidr, label in table)


# Our own tables rather than ``ipaddress.is_global``: its answer changes between Python releases
# and it calls multicast, 4000::/3 and friends "global". First match wins where ranges nest.
_METADATA = frozenset(
    ip_address(ip)
    # AWS, GCP, Azure and OCI IMDS; AWS ECS; Alibaba; AWS IPv6; Azure WireServer (a public address).
    for ip in (
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "fd00:ec2::254",
        "168.63.129.16",
    )
)
_V4_BLOCKED = _networks(
    [
        ("0.0.0.0/8", "an unspecified (this-network) address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (CGNAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a reserved (IETF protocol assignments) address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a reserved (6to4 relay anycast) address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "a broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    ]
)
_V6_BLOCKED = _networks(
    [
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001:db8::/32", "a documentation address"),
        ("2001::/23", "a reserved (IETF protocol assignments) address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a unique-local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    ]
)
# Anything outside 2000::/3 is unallocated or special: not a place a webhook can live.
_V6_GLOBAL_UNICAST = ip_network("2000::/3")
_NAT64 = ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ip_network("::/96")
_TEREDO = ip_network("2001::/32")

_LOCALHOST_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
# Special-use or conventionally private suffixes (RFC 6762 app. G, RFC 8375, ICANN's .internal):
# such names can only reach private hosts, so refuse them early unless a private network is allowed.
_PRIVATE_SUFFIXES = (
    ".internal",
    ".local",
    ".localdomain",
    ".home.arpa",
    ".lan",
    ".home",
    ".corp",
    ".intranet",
    ".private",
)
_HOSTNAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def _default_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _text(ip: IPAddress) -> str:
    """``str(ip)``, the same on every Python: 3.13 writes an IPv4-mapped address's last 32 bits as
    dotted IPv4 (``::ffff:127.0.0.1``), 3.11 and 3.12 in hex (``::ffff:7f00:1``), kept here."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        v4 = int(ip.ipv4_mapped)
        scope = f"%{ip.scope_id}" if ip.scope_id else ""
        return f"::ffff:{v4 >> 16:x}:{v4 & 0xFFFF:x}{scope}"
    return str(ip)


def _embedded_ipv4(ip: IPv6Address) -> tuple[str, list[IPv4Address]]:
    """Return the IPv4 address(es) a transition address carries, and what kind of wrapper it is."""
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped address", [ip.ipv4_mapped]
    if ip in _NAT64:
        return "a NAT64 address", [IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return "a 6to4 address", [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return "a Teredo address", [client, server]
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return "an IPv4-compatible address", [IPv4Address(int(ip) & 0xFFFFFFFF)]
    return "", []


def _v4_problem(ip: IPv4Address) -> str | None:
    if ip in _METADATA:
        return "a cloud metadata address"
    for network, label in _V4_BLOCKED:
        if ip in network:
            return label
    return None


def _v6_problem(ip: IPv6Address) -> str | None:
    if ip.scope_id is not None:
        ip = IPv6Address(int(ip))
    if ip in _METADATA:
        return "a cloud metadata address"
    for network, label in _V6_BLOCKED:
        if ip in network:
            return label
    if ip not in _V6_GLOBAL_UNICAST:
        return "a reserved address"
    return None


def _parse_ip_literal(host: str) -> IPAddress | None:
    """Parse ``host`` as an IP the way the OS resolver would (``inet_aton`` forms included).

    Returns None for host names. A host whose last label is numeric but which is not a valid
    IPv4 address is refused, as WHATWG URL parsing does, rather than handed to DNS.
    """
    host = host.strip("[]")
    if ":" in host:
        try:
            return IPv6Address(host)
        except ValueError as exc:
            raise UnsafeURL(f"{host!r} is not a valid IPv6 address") from exc
    host = host.rstrip(".")
    try:
        return IPv4Address(host)
    except ValueError:
        pass
    last_label = host.rsplit(".", 1)[-1].lower()
    if not host.isascii() or not _NUMERIC_LABEL.fullmatch(last_label):
        return None
    try:
        return IPv4Address(socket.inet_aton(host))
    except OSError as exc:
        raise UnsafeURL(f"{host!r} is not a valid IPv4 address") from exc


#: ``encode_host(name) -> ascii_name``: turns a Unicode host name into the ASCII (A-label) name
#: that will be resolved and sent; raises ``UnicodeError`` or ``ValueError`` for invalid names.
HostEncoder = Callable[[str], str]


def idna2003_host(host: str) -> str:
    """The standard library's IDNA 2003 encoding (``faß`` becomes ``fass``)."""
    return host.encode("idna").decode("ascii")


_DOTS = ".\u3002\uff0e\uff61"  # what IDNA reads as label separators


def _check_a_label(label: str) -> None:
    """Refuse an ``xn--`` label that is not valid Punycode (it could not be anyone's name).

    Only the Punycode layer must round-trip: IDNA 2003 and IDNA 2008 map some characters
    differently (``ß``), and the name sent is this label as it stands either way.
    """
    encoded = label[4:]
    decoded = encoded.encode("ascii").decode("punycode")
    if (
        decoded.isascii()
        or not decoded.isprintable()
        or any(c.isspace() or c in _DOTS for c in decoded)
        or decoded.encode("punycode").decode("ascii") != encoded
    ):
        raise UnicodeError(f"{label!r} is not valid Punycode for a name")


def requests_host_name(host: str) -> str:
    """``host`` as requests puts it on the wire: IDNA 2008 with UTS 46 mapping (``faß.de`` is
    ``xn--fa-hia.de``, not IDNA 2003's ``fass.de``). The guard's ``encode_host`` for delivery."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UnicodeError(str(exc)) from exc


def _encode_hostname(host: str, encode_host: HostEncoder) -> str:
    """IDNA-encode and validate a host name; raise UnsafeURL if it cannot be a DNS name."""
    try:
        encoded = (host if host.isascii() else encode_host(host)).lower()
        if not encoded.isascii():
            raise UnicodeError("the encoded name is not ASCII")
        for label in encoded.split("."):
            if len(label) > 63:
                raise UnicodeError("a label is longer than 63 characters")
            if label.startswith("xn--"):
                _check_a_label(label)
    except (UnicodeError, ValueError) as exc:
        raise UnsafeURL(f"{host!r} is not a valid host name (IDNA: {exc})") from exc
    if len(encoded) > 253 or not _HOSTNAME.fullmatch(encoded):
        raise UnsafeURL(f"{host!r} is not a valid host name")
    return encoded


class URLGuard:
    """Refuses URLs and addresses a webhook must never reach: loopback, private, metadata, etc.

    ``allowed_networks`` is the operator's escape hatch (e.g. ``["10.0.0.0/8"]`` for internal
    receivers); addresses inside it are allowed whatever their kind. ``https_only`` refuses
    plain-http URLs. ``encode_host`` turns Unicode host names into the ASCII name the HTTP
    client will resolve and send (default: IDNA 2003); the guard must vet that very name.
    """

    def __init__(
        self,
        allowed_networks: Iterable[str | Network] = (),
        resolver: Resolver | None = None,
        *,
        https_only: bool = False,
        encode_host: HostEncoder | None = None,
    ) -> None:
        self.allowed_networks = parse_networks(allowed_networks)
        self.https_only = https_only
        self.encode_host: HostEncoder = encode_host or idna2003_host
        self.resolver: Resolver = resolver or _default_resolver
        self._allowed_v4 = tuple(n for n in self.allowed_networks if n.version == 4)
        self._allowed_v6 = tuple(n for n in self.allowed_networks if n.version == 6)
        self._loopback_allowed = self._is_allowed(IPv4Address("127.0.0.1")) or self._is_allowed(
            IPv6Address("::1")
        )

    def __repr__(self) -> str:
        nets = ", ".join(str(n) for n in self.allowed_networks)
        return f"URLGuard(allowed_networks=[{nets}], https_only={self.https_only})"

    # -- syntax ---------------------------------------------------------------------------------

    def check_url(self, url: str) -> Target:
        """Check a URL's syntax and any IP literal in it, without DNS; return where it points."""
        if not isinstance(url, str) or not url:
            raise UnsafeURL("the URL is empty")
        if _UNSAFE_CHARS.search(url):
            raise UnsafeURL("the URL contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unclosed "[" around an IPv6 host
            raise UnsafeURL(f"the URL cannot be parsed: {exc}") from exc
        scheme = parts.scheme.lower()
        if not scheme:
            raise UnsafeURL("the URL must start with http:// or https://")
        if scheme not in ("http", "https"):
            raise UnsafeURL(f"the {scheme!r} scheme is not allowed (use http or https)")
        if self.https_only and scheme != "https":
            raise UnsafeURL("only https:// URLs are allowed (HTTPS_ONLY is set)")
        if "@" in parts.netloc:
            raise UnsafeURL("credentials in the URL are not allowed")
        raw_host = parts.hostname
        if not raw_host:
            raise UnsafeURL("the URL has no host")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is None:
            port = 443 if scheme == "https" else 80
        if not 1 <= port <= 65535:
            raise UnsafeURL("the port must be a number between 1 and 65535")

        # A ":" here means a bracketed IPv6 literal (urlsplit validated the brackets).
        host = (
            raw_host
            if ":" in raw_host
            else _encode_hostname(raw_host.rstrip("."), self.encode_host)
        )
        ip = _parse_ip_literal(host)
        if ip is not None:
            self.check_address(_text(ip))
            return Target(scheme, _text(ip), port, is_ip_literal=True)

        self._check_special_name(host)
        return Target(scheme, host, port, is_ip_literal=False)

    def _check_special_name(self, host: str) -> None:
        if host in _LOCALHOST_NAMES or host.endswith(".localhost"):
            if not self._loopback_allowed:
                raise PrivateHostName(f"{host} is a loopback host name")
            return
        if self.allowed_networks:
            return
        if "." not in host:
            raise PrivateHostName(
                f"{host} is a single-label host name, which only reaches internal hosts"
            )
        for suffix in _PRIVATE_SUFFIXES:
            if host.endswith(suffix):
                raise PrivateHostName(
                    f"{host} is under {suffix}, which only reaches internal hosts"
                )

    # -- addresses ------------------------------------------------------------------------------

    def _is_allowed(self, ip: IPAddress) -> bool:
        if ip.version == 4:
            return any(ip in net for net in self._allowed_v4)
        if any(ip in net for net in self._allowed_v6):
            return True
        _, embedded = _embedded_ipv4(ip)
        return bool(embedded) and any(v4 in net for v4 in embedded[:1] for net in self._allowed_v4)

    def _address_problem(self, ip: IPAddress) -> str | None:
        """Say why ``ip`` is blocked (e.g. "a loopback address"), or None if it may be called."""
        if self._is_allowed(ip):
            return None
        if ip.version == 4:
            return _v4_problem(ip)
        wrapper, embedded = _embedded_ipv4(ip)
        for v4 in embedded:
            problem = _v4_problem(v4)
            if problem is not None:
                return f"{wrapper} of {v4}, {problem}"
        if embedded:
            return None  # the traffic ends up at a public IPv4 address
        return _v6_problem(ip)

    def check_address(self, ip: str) -> None:
        """Raise BlockedAddress unless ``ip`` is public or inside the allowed networks."""
        try:
            address = ip_address(ip)
        except ValueError as exc:
            raise BlockedAddress(f"{ip!r} is not an IP address") from exc
        problem = self._address_problem(address)
        if problem is not None:
            raise BlockedAddress(f"{_text(address)} is {problem}")

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses, all vetted; any bad one refuses the host.

        A name pointing at a mix of public and private addresses is hostile, not filtered.
        """
        literal = _parse_ip_literal(host)
        if literal is not None:
            self.check_address(_text(literal))
            return [_text(literal)]
        try:
            found = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnresolvableHost(f"could not resolve {host}") from exc
        if not found:
            raise UnresolvableHost(f"could not resolve {host}")
        addresses: list[str] = []
        for raw in found:
            try:
                address = ip_address(raw)
            except ValueError as exc:
                raise BlockedAddress(
                    f"{host} resolves to {raw!r}, which is not an IP address"
                ) from exc
            problem = self._address_problem(address)
            if problem is not None:
                raise BlockedAddress(f"{host} resolves to {_text(address)}, {problem}")
            if _text(address) not in addresses:
                addresses.append(_text(address))
        return addresses

    def validate(self, url: str, *, resolve: bool = True, strict_dns: bool = False) -> Target:
        """Full check for saving an endpoint: syntax, then for names DNS with every address vetted.

        An unresolvable name passes unless ``strict_dns``: DNS may be down now, and delivery
        re-checks the addresses on every new connection anyway.
        """
        target = self.check_url(url)
        if resolve and not target.is_ip_literal:
            try:
                self.resolve(target.host, target.port)
            except UnresolvableHost:
                if strict_dns:
                    raise
        return target
