"""Writes docs/commands.md from the commands themselves: python -m tests.docs.commands_page"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

COMMANDS = Path(__file__).resolve().parents[2] / "django_hooks" / "management" / "commands"
PAGE = Path(__file__).resolve().parents[2] / "docs" / "commands.md"
DJANGO_OPTIONS = {
    "help",
    "version",
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}


def command_names() -> list[str]:
    return sorted(p.stem for p in COMMANDS.glob("hooks_*.py"))


def options(name: str) -> list[argparse.Action]:
    """The command's own options and arguments (not Django's common ones)."""
    from django.core.management import load_command_class

    parser = load_command_class("django_hooks", name).create_parser("manage.py", name)
    return [action for action in parser._actions if action.dest not in DJANGO_OPTIONS]


def render() -> str:
    from django.core.management import load_command_class

    lines = [
        "# Management commands",
        "",
        "Each is `python manage.py <name>`; it prints what it did, and exits non-zero with a message",
        "naming the problem when it cannot do it. This page is generated from the commands",
        "(`python -m tests.docs.commands_page`), so it says what `--help` says.",
        "",
    ]
    for name in command_names():
        command = load_command_class("django_hooks", name)
        lines += [f"## {name}", "", " ".join(command.help.split()), ""]
        rows = []
        for action in options(name):
            flag = ", ".join(action.option_strings) or action.dest.upper()
            if action.metavar:
                flag += f" {action.metavar}"
            # The help says the default itself (tests/docs/test_commands_page.py checks it does,
            # once): --help readers need it too, and adding it here said it twice.
            rows.append(f"| `{flag}` | {' '.join((action.help or '').split())} |")
        if rows:
            lines += ["| option | meaning |", "|---|---|", *rows, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    PAGE.write_text(render())
