"""What can be checked without a browser: every form control has a label, every page has a
language, one h1 and a skip link, and the stylesheet's text colours reach WCAG AA (4.5:1)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import django_hooks
from django_hooks.event_types import unregister_event_type
from tests.portal.conftest import PORTAL, get_pages, logged_in, owned_objects

pytestmark = pytest.mark.django_db

STYLES = (
    Path(__file__).resolve().parents[2] / "django_hooks/templates/django_hooks/portal/styles.html"
)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str]] = []
        self.labelled: set[str] = set()
        self.h1 = 0
        self.lang = ""
        self.skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "label" and a.get("for"):
            self.labelled.add(a["for"])
        elif tag == "a" and a.get("href") == "#main":
            self.skip = True
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a)


@pytest.fixture
def catalogue():
    django_hooks.register_event_type("order.paid", "An order was paid.", example={"id": 1})
    yield
    unregister_event_type("order.paid")


@pytest.mark.usefixtures("catalogue")
def test_every_control_is_labelled_and_every_page_is_navigable(alice):
    ids = owned_objects(alice)
    client = logged_in(alice)
    checked = 0
    for path in get_pages([ids["endpoint"]], [ids["delivery"]]):
        page = Page()
        page.feed(client.get(PORTAL + path).content.decode())
        assert page.lang == "en" and page.h1 == 1 and page.skip, path
        for control in page.controls:
            assert control.get("id") in page.labelled or control.get("aria-label"), (path, control)
            checked += 1
    assert checked >= 10


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_reach_aa_contrast():
    colours = dict(re.findall(r"--(\w+): (#[0-9a-f]{6})", STYLES.read_text()))
    pairs = [
        ("quiet", "#ffffff"),
        ("quiet", colours["soft"]),
        ("link", "#ffffff"),
        ("link", colours["soft"]),
        ("bad", "#ffffff"),
        ("ink", "#eef8f0"),
    ]
    # Badges and buttons: white text on these.
    pairs += [("#ffffff", colours[name]) for name in ("ok", "bad", "wait", "quiet", "link")]
    for fg, bg in pairs:
        fg = colours.get(fg, fg)
        assert contrast(fg, bg) >= 4.5, (fg, bg, round(contrast(fg, bg), 2))
