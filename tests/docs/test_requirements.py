"""The README and the docs' front page state the Python and Django versions pyproject requires,
and the pairs tox.ini tests, which are the ones the classifiers name."""

import configparser
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def required():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])[1]
    django = next(
        re.match(r"django>=(\d+\.\d+)(,<\d+)?$", dep, re.IGNORECASE)[1]
        for dep in project["dependencies"]
        if re.match(r"django>=", dep, re.IGNORECASE)
    )
    return python, django


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_page_states_the_required_python_and_django(page):
    python, django = required()
    text = (ROOT / page).read_text()
    assert f"Requires Python ≥ {python} and Django ≥ {django}" in text


def expand(pattern: str) -> list[str]:
    """tox's braces: ``py{311,312}-django52`` is py311-django52 and py312-django52."""
    braces = re.search(r"\{([^}]*)\}", pattern)
    if braces is None:
        return [pattern]
    head, tail = pattern[: braces.start()], pattern[braces.end() :]
    return [env for choice in braces[1].split(",") for env in expand(head + choice + tail)]


def matrix_pairs() -> list[tuple[str, str]]:
    """(Django, Python) of each ``py3X-djangoXY`` env in tox.ini's envlist."""
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = [env for line in tox["tox"]["envlist"].split() for env in expand(line)]
    pairs = [re.fullmatch(r"py3(\d+)-django(\d)(\d+)", env) for env in envs]
    return [(f"{m[2]}.{m[3]}", f"3.{m[1]}") for m in pairs if m]


def test_the_classifiers_name_exactly_the_tested_django_and_python_versions():
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    pairs = matrix_pairs()
    assert {c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Framework :: Django ::")} == {
        django for django, _ in pairs
    }
    assert {
        c.rsplit(" ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    } == {python for _, python in pairs}


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_page_states_the_matrix_pairs(page):
    by_django: dict[str, list[str]] = {}
    for django, python in matrix_pairs():
        by_django.setdefault(django, []).append(python)
    text = " ".join((ROOT / page).read_text().split())
    for django, pythons in by_django.items():
        stated = rf"Django {re.escape(django)}( LTS)? on Python {re.escape(' and '.join(pythons))}"
        assert re.search(stated, text), f"{page} should say it is tested on {stated}"
