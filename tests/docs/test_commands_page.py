"""docs/commands.md says what the commands' ``--help`` says, and every default once."""

import argparse
import contextlib
import io
import re

import pytest
from django.core.management import ManagementUtility

from tests.docs.commands_page import PAGE, command_names, options, render


def test_the_commands_page_says_what_the_commands_say():
    assert PAGE.read_text() == render(), (
        "docs/commands.md is out of date: python -m tests.docs.commands_page"
    )


def words(text: str) -> str:
    return " ".join(text.split())


def documented_rows(name: str) -> list[tuple[str, str]]:
    section = PAGE.read_text().split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \| (.*) \|$", section, re.MULTILINE)


def real_help(name: str) -> str:
    """What ``manage.py <name> --help`` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        ManagementUtility(["manage.py", name, "--help"]).execute()
    assert exit_.value.code in (0, None)
    return words(out.getvalue())


@pytest.mark.parametrize("name", command_names())
def test_each_documented_option_is_in_the_real_help(name):
    help_text = real_help(name)
    rows = documented_rows(name)
    assert rows, f"docs/commands.md has no options table for {name}"
    for flag, meaning in rows:
        assert flag.split(" ")[0].split(",")[0].lower() in help_text.lower(), flag
        assert words(meaning) in help_text, (name, flag)


@pytest.mark.parametrize("name", command_names())
def test_each_default_is_stated_once(name):
    for action in options(name):
        if action.default in (None, False, argparse.SUPPRESS) or action.default == []:
            continue
        text = action.help or ""
        default = action.default
        if isinstance(default, float) and default.is_integer():
            default = int(default)  # "(default 10)" for 10.0
        assert text.lower().count("default") == 1, (name, action.dest, text)
        assert re.search(rf"\b{re.escape(str(default))}\b", text), (name, action.dest, text)
