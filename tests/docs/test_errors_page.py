"""docs/errors.md lists every system check id and every exception, and nothing else."""

import re
from pathlib import Path

from django_hooks import checks, exceptions

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "errors.md"
HEADING = re.compile(r"^### (?P<name>\S+)$", re.MULTILINE)
CHECK_ID = re.compile(r'"(django_hooks\.[EW]\d{3})"')


def documented() -> set[str]:
    return set(HEADING.findall(PAGE.read_text()))


def test_every_check_id_is_documented():
    used = set(CHECK_ID.findall(Path(checks.__file__).read_text()))
    assert len(used) >= 16  # the scan found the checks
    assert used == {name for name in documented() if name.startswith("django_hooks.")}


def test_every_exception_is_documented():
    named = {name for name in documented() if not name.startswith("django_hooks.")}
    assert named == set(exceptions.__all__)


def test_the_checks_module_lists_each_id():
    used = set(CHECK_ID.findall(Path(checks.__file__).read_text()))
    listed = set(re.findall(r"\b([EW]\d{3})\b", checks.__doc__ or ""))
    assert {name.removeprefix("django_hooks.") for name in used} == listed


def test_the_page_is_in_the_navigation():
    assert "errors.md" in (ROOT / "mkdocs.yml").read_text()
