"""The README and the docs' front page state the Python and Django versions pyproject requires."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def required():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])[1]
    django = next(
        re.fullmatch(r"django>=(\d+\.\d+)", dep, re.IGNORECASE)[1]
        for dep in project["dependencies"]
        if re.match(r"django>=", dep, re.IGNORECASE)
    )
    return python, django


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_page_states_the_required_python_and_django(page):
    python, django = required()
    text = (ROOT / page).read_text()
    assert f"Requires Python ≥ {python} and Django ≥ {django}" in text
