"""Every Python example in the docs is valid Python (the quickstart also runs: tests/packaging)."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python[^\n]*\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)

EXAMPLES = [
    pytest.param(match["code"], id=f"{page.relative_to(DOCS)}#{n}")
    for page in sorted(DOCS.rglob("*.md"))
    for n, match in enumerate(BLOCK.finditer(page.read_text()))
]


@pytest.mark.parametrize("code", EXAMPLES)
def test_python_examples_compile(code):
    compile(code, "<docs>", "exec")


def test_examples_were_found():
    assert len(EXAMPLES) >= 10
