"""The settings reference (docs/settings.md) documents every key with its real default."""

import ast
import re
from pathlib import Path

from django_hooks.conf import DEFAULTS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
ENTRY = re.compile(r"^### (?P<key>[A-Z_]+)\nDefault: `(?P<default>[^`]*)`$", re.MULTILINE)


def documented() -> dict[str, str]:
    return {m["key"]: m["default"] for m in ENTRY.finditer(PAGE.read_text())}


def test_every_setting_is_documented_and_nothing_else():
    assert sorted(documented()) == sorted(DEFAULTS)


def test_documented_defaults_are_the_real_ones():
    wrong = {
        key: (text, DEFAULTS[key])
        for key, text in documented().items()
        if key in DEFAULTS and ast.literal_eval(text) != DEFAULTS[key]
    }
    assert not wrong, f"docs/settings.md disagrees with conf.DEFAULTS: {wrong}"
