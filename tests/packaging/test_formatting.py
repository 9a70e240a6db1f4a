"""The formatter applies everywhere: no file opts out of `ruff format` line by line."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("django_hooks", "tests", "benchmarks", "example_project")
# Written in two pieces so that this file does not match itself.
OPT_OUT = re.compile("#" + r"\s*fmt:\s*(skip|off)\b")


def test_no_source_file_opts_out_of_the_formatter():
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in SOURCES
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OPT_OUT.search(line)
    ]
    assert found == [], "format these with `make format` instead: " + ", ".join(found)
