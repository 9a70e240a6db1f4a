"""The SSRF corpus: URLs an attacker would save as a webhook endpoint, and why each is refused.

Shared by every save path and by the delivery tests. ``{port}`` in a URL is replaced by the port
of a recording receiver on 127.0.0.1, so a loopback case that slipped through would be seen.
Host names resolve through ``FakeDNS`` (installed with ``client.use_resolver``), never the network.

For the REST API (``django_hooks.api``), reuse the table as is::

    @pytest.mark.parametrize("case", SSRF_CASES, ids=str)
    def test_api_refuses(case, api_client, receiver):
        with refusing_ssrf(receiver.port):
            response = api_client.post("/api/hooks/endpoints/", {"url": case.at(receiver.port)},
                                       format="json")
        assert_refused_response(response, case)
"""

from __future__ import annotations

import contextlib
import html
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.test import override_settings

from django_hooks.outbound import client

PUBLIC_V4 = "93.184.215.14"


@dataclass(frozen=True)
class SSRFCase:
    url: str  # may hold "{port}"
    reason: str  # a fragment of the error that names why the URL is refused

    def at(self, port: int) -> str:
        return self.url.replace("{port}", str(port))

    def __str__(self) -> str:
        return self.url


C = SSRFCase
LOOPBACK = "127.0.0.1 is a loopback address"

SSRF_CASES = [
    # loopback, in every spelling the OS resolver accepts
    C("http://127.0.0.1:{port}/hook", LOOPBACK),
    C("http://127.0.0.1.:{port}/hook", LOOPBACK),
    C("http://127.1:{port}/hook", LOOPBACK),
    C("http://2130706433:{port}/hook", LOOPBACK),
    C("http://0x7f000001:{port}/hook", LOOPBACK),
    C("http://0177.0.0.1:{port}/hook", LOOPBACK),
    C("http://0x7f.0.0.1:{port}/hook", LOOPBACK),
    C("http://\u2460\u2461\u2466.0.0.1:{port}/hook", LOOPBACK),  # circled digits, folded by IDNA
    C("http://127\u30020\u30020\u30021:{port}/hook", LOOPBACK),  # ideographic full stops
    C("http://[::1]:{port}/hook", "::1 is a loopback address"),
    C("http://[0:0:0:0:0:0:0:1]:{port}/hook", "::1 is a loopback address"),
    C("http://[::ffff:127.0.0.1]:{port}/hook", "IPv4-mapped address of 127.0.0.1, a loopback"),
    C("http://[0:0:0:0:0:ffff:7f00:1]:{port}/hook", "IPv4-mapped address of 127.0.0.1"),
    C("http://[::127.0.0.1]:{port}/hook", "IPv4-compatible address of 127.0.0.1"),
    C("http://0.0.0.0:{port}/hook", "0.0.0.0 is an unspecified"),
    C("http://0:{port}/hook", "0.0.0.0 is an unspecified"),
    C("http://[::]:{port}/hook", ":: is an unspecified address"),
    C("http://localhost:{port}/hook", "localhost is a loopback host name"),
    C("http://localhost.:{port}/hook", "localhost is a loopback host name"),
    C("http://LocalHost:{port}/hook", "localhost is a loopback host name"),
    C("http://hooks.localhost:{port}/hook", "hooks.localhost is a loopback host name"),
    C(
        "http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{port}/hook",
        "localhost is a",
    ),
    C("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{port}/", "localhost is a"),
    # private, link-local, metadata, CGNAT, multicast, reserved
    C("http://10.0.0.1/", "10.0.0.1 is a private address"),
    C("http://172.16.0.1/", "172.16.0.1 is a private address"),
    C("http://192.168.0.1/", "192.168.0.1 is a private address"),
    C("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    C("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a cloud metadata address"),
    C("http://100.100.100.200/latest/meta-data/", "cloud metadata address"),
    C("http://169.254.1.1/", "169.254.1.1 is a link-local address"),
    C("http://100.64.0.1/", "100.64.0.1 is a shared (CGNAT) address"),
    C("http://224.0.0.251/", "224.0.0.251 is a multicast address"),
    C("http://[ff02::1]/", "ff02::1 is a multicast address"),
    C("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
    C("http://255.255.255.255/", "255.255.255.255 is a broadcast address"),
    C("http://192.0.0.170/", "is a reserved (IETF protocol assignments) address"),
    C("http://198.18.0.1/", "198.18.0.1 is a benchmarking address"),
    C("http://[fc00::1]/", "fc00::1 is a unique-local (private) address"),
    C("http://[fe80::1]/", "fe80::1 is a link-local address"),
    C("http://[fec0::1]/", "fec0::1 is a site-local address"),
    C("http://[2001:db8::1]/", "2001:db8::1 is a documentation address"),
    # IPv4 private addresses wrapped in IPv6 transition forms
    C("http://[64:ff9b::7f00:1]:{port}/hook", "NAT64 address of 127.0.0.1, a loopback"),
    C("http://[64:ff9b::a9fe:a9fe]/", "NAT64 address of 169.254.169.254, a cloud metadata"),
    C("http://[64:ff9b::a00:1]/", "NAT64 address of 10.0.0.1, a private"),
    C("http://[64:ff9b:1::a00:1]/", "a local-use NAT64 address"),
    C("http://[2002:7f00:1::]:{port}/hook", "6to4 address of 127.0.0.1, a loopback"),
    C("http://[2002:a9fe:a9fe::]/", "6to4 address of 169.254.169.254, a cloud metadata"),
    C("http://[2002:c0a8:101::1]/", "6to4 address of 192.168.1.1, a private"),
    C("http://[::ffff:169.254.169.254]/", "IPv4-mapped address of 169.254.169.254"),
    C("http://[2001:0:5ef5:79fd::f5ff:fffe]/", "Teredo address of 10.0.0.1, a private"),
    # host names that resolve to private addresses (FakeDNS below)
    C("http://loopback.attacker.test:{port}/hook", "resolves to 127.0.0.1, a loopback"),
    C("http://private.attacker.test/", "resolves to 10.1.2.3, a private"),
    C("http://metadata.attacker.test/", "resolves to 169.254.169.254, a cloud metadata"),
    C("http://mapped.attacker.test:{port}/hook", "resolves to ::ffff:7f00:1, an IPv4-mapped"),
    C("http://six.attacker.test:{port}/hook", "resolves to ::1, a loopback"),
    C("http://mixed.attacker.test:{port}/hook", "resolves to 127.0.0.1, a loopback"),
    C("http://nat64.attacker.test/", "resolves to 64:ff9b::a9fe:a9fe, a NAT64 address"),
    C("http://B\u00fccher.attacker.test/", "xn--bcher-kva.attacker.test resolves to 10.0.0.7"),
    C("http://xn--bcher-kva.attacker.test/", "xn--bcher-kva.attacker.test resolves to 10.0.0.7"),
    C("http://\u0430\u0440\u0440\u04cf\u0435.attacker.test/", "resolves to 192.168.9.9"),
    # IDNA 2008 (what requests sends) and IDNA 2003 (Python's codec) differ on "ß": the name
    # vetted must be the one sent, xn--fa-hia, not fass.
    C("http://fa\u00df.attacker.test/", "xn--fa-hia.attacker.test resolves to 10.0.0.8"),
    C("http://metadata.google.internal/", "under .internal, which only reaches internal hosts"),
    C("http://printer.local/", "under .local, which only reaches internal hosts"),
    C("http://redis:6379/", "single-label host name"),
    # URL-parser confusion: userinfo, fragments, backslashes
    C("http://example.com@127.0.0.1:{port}/hook", "credentials in the URL are not allowed"),
    C("http://example.com:443@127.0.0.1:{port}/hook", "credentials in the URL are not allowed"),
    C("http://127.0.0.1:{port}#@example.com/", LOOPBACK),
    C("http://example.com\\@127.0.0.1:{port}/hook", "backslashes"),
    # schemes other than http(s)
    C("file:///etc/passwd", "the 'file' scheme is not allowed"),
    C("gopher://127.0.0.1:6379/_FLUSHALL", "the 'gopher' scheme is not allowed"),
    C("ftp://example.com/hook", "the 'ftp' scheme is not allowed"),
    C("data:text/plain,hello", "the 'data' scheme is not allowed"),
    C("dict://127.0.0.1:6379/info", "the 'dict' scheme is not allowed"),
]

# Names in the corpus, and those the other tests use, with the answers an attacker would serve.
FAKE_DNS: dict[str, list[str]] = {
    "public.attacker.test": [PUBLIC_V4],
    "loopback.attacker.test": ["127.0.0.1"],
    "private.attacker.test": ["10.1.2.3"],
    "metadata.attacker.test": ["169.254.169.254"],
    "mapped.attacker.test": ["::ffff:127.0.0.1"],
    "six.attacker.test": ["::1"],
    "mixed.attacker.test": [PUBLIC_V4, "127.0.0.1"],
    "nat64.attacker.test": ["64:ff9b::a9fe:a9fe"],
    "xn--bcher-kva.attacker.test": ["10.0.0.7"],
    "xn--80ak6aa92e.attacker.test": ["192.168.9.9"],  # Cyrillic "аррӏе": a homograph
    "xn--fa-hia.attacker.test": ["10.0.0.8"],  # "faß", as IDNA 2008 spells it
    "fass.attacker.test": [PUBLIC_V4],  # "faß", as IDNA 2003 spells it
}


class FakeDNS:
    """A resolver for ``client.use_resolver``: fixed answers, or a script of answers per name."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = dict(FAKE_DNS if answers is None else answers)
        self.scripts: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def script(self, host: str, *answers: list[str]) -> None:
        """Answer successive lookups of ``host`` in turn; the last answer repeats."""
        self.scripts[host] = list(answers)

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        script = self.scripts.get(host)
        if script:
            return script.pop(0) if len(script) > 1 else script[0]
        try:
            return self.answers[host]
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


@contextlib.contextmanager
def refusing_ssrf(dns: FakeDNS | None = None, **settings: Any) -> Iterator[FakeDNS]:
    """No private network allowed, fake DNS: the production posture the corpus is refused in."""
    dns = dns or FakeDNS()
    hooks = {"ALLOWED_NETWORKS": [], "RETRY_SCHEDULE": [600], "TIMEOUT": 2, **settings}
    with override_settings(DJANGO_HOOKS=hooks), client.use_resolver(dns):
        yield dns


def assert_refused_response(response: Any, case: SSRFCase, *, field: str = "url") -> None:
    """An HTTP answer to a create/update refusing ``case``: 400 with the reason on the field."""
    assert response.status_code == 400, response.content[:500]
    errors = json.loads(response.content)[field]
    assert any(case.reason.lower() in str(e).lower() for e in errors), errors


def assert_refused_page(content: bytes, case: SSRFCase) -> None:
    """An HTML form page (the admin) showing the reason ``case`` is refused."""
    text = html.unescape(content.decode())
    assert case.reason.lower() in text.lower(), f"{case.reason!r} not shown"
