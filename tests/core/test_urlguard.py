"""The SSRF guard: every spelling of a private address is refused, public ones pass, no DNS."""

from __future__ import annotations

import ipaddress
import random
import socket

import pytest

from django_hooks.core.errors import UnsafeURL
from django_hooks.core.urlguard import (
    BlockedAddress,
    Target,
    UnresolvableHost,
    URLGuard,
    parse_networks,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:c8a7"

# Fake DNS: names used below map to fixed answers; anything else "does not resolve".
FAKE_DNS = {
    "example.com": [PUBLIC_V4, PUBLIC_V6],
    "xn--bcher-kva.example": [PUBLIC_V4],
    "loopback.example": ["127.0.0.1"],
    "mixed.example": [PUBLIC_V4, "10.0.0.1"],
    "mapped-metadata.example": ["::ffff:169.254.169.254"],
    "private6.example": [PUBLIC_V6, "fd12::1"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    try:
        return FAKE_DNS[host]
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


@pytest.fixture
def guard() -> URLGuard:
    return URLGuard(resolver=fake_resolver)


BLOCKED_URLS = [
    # every spelling of loopback
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0X7F000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0x7f.0.0.1/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://127.255.255.254:8080/", "loopback"),
    ("http://\uff11\uff12\uff17.0.0.1/", "loopback"),  # fullwidth digits, folded by IDNA
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[0:0:0:0:0:ffff:7f00:1]/", "loopback"),
    ("http://[::127.0.0.1]/", "loopback"),
    ("http://[64:ff9b::7f00:1]/", "loopback"),
    ("http://[2002:7f00:1::]/", "loopback"),
    ("http://localhost/", "loopback host name"),
    ("http://localhost./", "loopback host name"),
    ("http://LOCALHOST:8000/", "loopback host name"),
    ("http://foo.localhost/", "loopback host name"),
    # other non-public IPv4
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://100.100.100.200/", "metadata"),
    ("http://168.63.129.16/machine?comp=goalstate", "metadata"),  # Azure WireServer, public
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://192.0.0.8/", "reserved"),
    ("http://192.0.2.1/", "documentation"),
    ("http://198.51.100.7/", "documentation"),
    ("http://198.18.0.1/", "benchmarking"),
    # other non-public IPv6, and IPv4 smuggled inside IPv6
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fc00::1]/", "unique-local"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://[100::1]/", "discard"),
    ("http://[4000::1]/", "reserved"),
    ("http://[64:ff9b::a00:1]/", "NAT64 address of 10.0.0.1, a private"),
    ("http://[64:ff9b:1::1]/", "NAT64"),
    ("http://[2002:a00:1::]/", "6to4 address of 10.0.0.1, a private"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped address of 10.0.0.1, a private"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://[2001:0:5ef5:79fd::f5ff:fffe]/", "Teredo address of 10.0.0.1, a private"),
    # names that can only be internal
    ("http://metadata.google.internal/", ".internal"),
    ("http://printer.local/", ".local"),
    ("http://router.home.arpa/", ".home.arpa"),
    ("http://redis:6379/", "single-label"),
    # URL tricks and wrong schemes
    ("http://example.com@127.0.0.1/", "credentials in the URL are not allowed"),
    ("http://user:secret@example.com/", "credentials in the URL are not allowed"),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://exa mple.com/", "whitespace"),
    ("http://example.com/\n", "control characters"),
    ("file:///etc/passwd", "'file' scheme"),
    ("gopher://example.com/", "'gopher' scheme"),
    ("ftp://example.com/", "'ftp' scheme"),
    ("data:text/plain,hi", "'data' scheme"),
    ("javascript:alert(1)", "'javascript' scheme"),
    ("example.com/hook", "must start with http"),
    ("", "empty"),
    ("http:///path", "no host"),
    ("http://:80/", "no host"),
    ("http://example.com:0/", "between 1 and 65535"),
    ("http://example.com:99999/", "between 1 and 65535"),
    ("http://example.com:-1/", "between 1 and 65535"),
    ("http://example.com:http/", "between 1 and 65535"),
    ("http://256.0.0.1/", "not a valid IPv4"),
    ("http://1.2.3.4.5/", "not a valid IPv4"),
    ("http://08.1.1.1/", "not a valid IPv4"),
    ("http://a..example.com/", "not a valid host name"),
    ("http://xn--a.example/", "not a valid host name"),
    (f"http://{'a' * 64}.example/", "not a valid host name"),
    ("http://exa%6dple.com/", "not a valid host name"),
    ("http://[::1/", "Invalid IPv6"),
]


@pytest.mark.parametrize(("url", "reason"), BLOCKED_URLS)
def test_blocked_urls(guard: URLGuard, url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL) as excinfo:
        guard.validate(url)
    assert reason.lower() in str(excinfo.value).lower()


def test_blocked_list_is_large_enough() -> None:
    assert len(BLOCKED_URLS) >= 40


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://loopback.example/", "loopback.example resolves to 127.0.0.1, a loopback address"),
        ("https://mixed.example/", "mixed.example resolves to 10.0.0.1, a private address"),
        ("https://mapped-metadata.example/", "cloud metadata"),
        ("https://private6.example/", "unique-local"),
    ],
)
def test_names_resolving_to_blocked_addresses(guard: URLGuard, url: str, reason: str) -> None:
    with pytest.raises(BlockedAddress, match=reason):
        guard.validate(url)


def test_mixed_public_private_answer_raises_instead_of_filtering(guard: URLGuard) -> None:
    with pytest.raises(BlockedAddress):
        guard.resolve("mixed.example", 443)


def test_literal_checks_need_no_dns() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"resolver called for {host}")

    guard = URLGuard(resolver=no_dns)
    with pytest.raises(BlockedAddress, match="loopback"):
        guard.validate("http://0x7f000001/")
    assert guard.validate(f"http://{PUBLIC_V4}/").host == PUBLIC_V4
    assert guard.resolve(PUBLIC_V4, 80) == [PUBLIC_V4]
    with pytest.raises(BlockedAddress, match="loopback"):
        guard.resolve("127.1", 80)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"http://{PUBLIC_V4}/hook", Target("http", PUBLIC_V4, 80, True)),
        (f"https://[{PUBLIC_V6}]:8443/x", Target("https", PUBLIC_V6, 8443, True)),
        (f"https://[::ffff:{PUBLIC_V4}]/", Target("https", "::ffff:5db8:d70e", 443, True)),
        ("https://example.com/hooks?x=1", Target("https", "example.com", 443, False)),
        ("HTTPS://EXAMPLE.COM.:444/", Target("https", "example.com", 444, False)),
        ("https://bücher.example/", Target("https", "xn--bcher-kva.example", 443, False)),
        ("https://BÜCHER.example/", Target("https", "xn--bcher-kva.example", 443, False)),
    ],
)
def test_allowed_urls(guard: URLGuard, url: str, expected: Target) -> None:
    assert guard.validate(url) == expected


def test_idna_2008_a_labels_are_valid_names(guard: URLGuard) -> None:
    # "faß" in IDNA 2008: Python's IDNA 2003 codec does not round-trip it, yet it is what is sent.
    assert guard.check_url("https://xn--fa-hia.example/").host == "xn--fa-hia.example"


def test_unicode_names_are_encoded_by_the_given_encoder() -> None:
    seen: list[str] = []

    def encode(host: str) -> str:
        seen.append(host)
        return "xn--fa-hia.example"

    assert URLGuard(encode_host=encode).check_url("https://fa\u00df.example/").host == (
        "xn--fa-hia.example"
    )
    assert seen == ["fa\u00df.example"]
    assert URLGuard().check_url("https://fa\u00df.example/").host == "fass.example"  # IDNA 2003
    with pytest.raises(UnsafeURL, match="not a valid host name"):
        URLGuard(encode_host=lambda host: "b\u00fccher.example").check_url("https://b\u00fc.x/")


def test_resolve_returns_vetted_addresses_in_order(guard: URLGuard) -> None:
    assert guard.resolve("example.com", 443) == [PUBLIC_V4, PUBLIC_V6]


def test_unresolvable_name_passes_validate_unless_strict(guard: URLGuard) -> None:
    assert guard.validate("https://nowhere.example/").host == "nowhere.example"
    assert guard.validate("https://nowhere.example/", resolve=False).host == "nowhere.example"
    with pytest.raises(UnresolvableHost, match=r"could not resolve nowhere\.example"):
        guard.validate("https://nowhere.example/", strict_dns=True)
    with pytest.raises(UnsafeURL, match="could not resolve"):
        guard.resolve("nowhere.example", 443)


def test_resolve_false_skips_dns(guard: URLGuard) -> None:
    assert guard.validate("http://loopback.example/", resolve=False).host == "loopback.example"


def test_empty_answer_counts_as_unresolvable() -> None:
    guard = URLGuard(resolver=lambda host, port: [])
    with pytest.raises(UnresolvableHost):
        guard.resolve("example.com", 80)


def test_default_resolver_resolves_localhost_and_blocks_it() -> None:
    with pytest.raises(BlockedAddress, match="loopback"):
        URLGuard().resolve("localhost", 80)


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("::1", "::1 is a loopback address"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("64:ff9b::a00:1", "NAT64 address of 10.0.0.1"),
        ("not-an-ip", "not an IP address"),
    ],
)
def test_check_address_reasons(guard: URLGuard, ip: str, reason: str) -> None:
    with pytest.raises(BlockedAddress, match=reason):
        guard.check_address(ip)


@pytest.mark.parametrize("ip", [PUBLIC_V4, PUBLIC_V6, "8.8.8.8", f"::ffff:{PUBLIC_V4}", "2a00::1"])
def test_check_address_allows_public(guard: URLGuard, ip: str) -> None:
    guard.check_address(ip)


class TestAllowedNetworks:
    def test_ipv4_loopback_network(self) -> None:
        guard = URLGuard(["127.0.0.0/8"], resolver=fake_resolver)
        assert guard.validate("http://127.0.0.5:8000/").host == "127.0.0.5"
        assert guard.validate("http://127.1/").host == "127.0.0.1"
        assert guard.validate("http://[::ffff:127.0.0.1]/").is_ip_literal
        assert guard.validate("http://[64:ff9b::7f00:1]/").is_ip_literal
        assert guard.validate("http://localhost/", resolve=False).host == "localhost"
        assert guard.resolve("loopback.example", 80) == ["127.0.0.1"]
        for url in ("http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/"):
            with pytest.raises(BlockedAddress):
                guard.validate(url)

    def test_ipv6_loopback_only(self) -> None:
        guard = URLGuard(["::1/128"], resolver=fake_resolver)
        assert guard.validate("http://[::1]:9000/").host == "::1"
        for url in ("http://127.0.0.1/", "http://[::2]/", "http://[fe80::1]/"):
            with pytest.raises(BlockedAddress):
                guard.validate(url)

    def test_private_range_lets_internal_names_through_syntax_checks(self) -> None:
        guard = URLGuard(["10.0.0.0/8"], resolver=lambda host, port: ["10.2.3.4"])
        assert guard.validate("http://svc.internal/").host == "svc.internal"
        assert guard.validate("http://redis:6379/").port == 6379
        with pytest.raises(UnsafeURL, match="loopback host name"):
            guard.validate("http://localhost/")
        with pytest.raises(BlockedAddress, match=r"192\.168\.0\.1"):
            guard.validate("http://192.168.0.1/")

    def test_accepts_network_objects(self) -> None:
        guard = URLGuard([ipaddress.ip_network("192.168.0.0/16")])
        guard.check_address("192.168.4.4")

    @pytest.mark.parametrize("bad", ["10.0.0.0/33", "nonsense", "10.0.0.1/8", "", "fe80::/200"])
    def test_bad_entry_is_named(self, bad: str) -> None:
        with pytest.raises(ValueError, match=repr(bad).replace("[", r"\[")):
            parse_networks(["127.0.0.0/8", bad])

    def test_parse_networks(self) -> None:
        assert parse_networks([" 10.0.0.0/8 ", "::1/128"]) == (
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
        )


def _spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """Ways inet_aton lets you write one IPv4 address."""
    a, b, c, d = ip.packed
    n = int(ip)
    return [
        str(ip),
        str(n),
        hex(n),
        f"0{oct(n)[2:]}",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"{oct(a).replace('0o', '0')}.{hex(b)}.{c}.{d}",
    ]


# A fixed pseudo-random sample (no hypothesis: its cache directory would litter the tree).
_SAMPLE = random.Random(20240601)
LOOPBACK_SAMPLE = [0x7F000000, 0x7F000001, 0x7FFFFFFF, 0x7F000100] + [
    _SAMPLE.randrange(0x7F000000, 0x80000000) for _ in range(50)
]
ANY_SAMPLE = [0, 1, 2**32 - 1, 0x0A000001] + [_SAMPLE.randrange(2**32) for _ in range(200)]


@pytest.mark.parametrize("n", LOOPBACK_SAMPLE)
def test_every_loopback_spelling_is_blocked(n: int) -> None:
    guard = URLGuard()
    for spelling in _spellings(ipaddress.IPv4Address(n)):
        with pytest.raises(BlockedAddress, match="loopback"):
            guard.check_url(f"http://{spelling}/")


def test_spellings_normalise_to_the_same_address() -> None:
    guard = URLGuard(["0.0.0.0/0"])
    for n in ANY_SAMPLE:
        ip = ipaddress.IPv4Address(n)
        for spelling in _spellings(ip):
            assert guard.check_url(f"http://{spelling}/").host == str(ip), spelling
