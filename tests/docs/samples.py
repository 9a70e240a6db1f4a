"""The docs' samples checked against what the code really makes and prints: ids and secrets in
their real format and length, and printed output compared line by line with a real run (the
tests that run the demo and `serve` call ``assert_page_shows`` on what they got)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>\w*)[^\n]*\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
ELIDED = {"...", "…"}

# What changes from run to run: ports, process ids, generated passwords and ids.
VARYING = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\bpid \d+"), "pid <pid>"),
    (re.compile(r"\bmsg_[0-9A-Z]{26}\b"), "msg_<id>"),
    (re.compile(r"(\bpassword )[^\s)]+"), r"\1<password>"),
    (re.compile(r"(curl -u \w+:)\S+"), r"\1<password>"),
    (re.compile(r"/webhooks/link/[^/\s]+/"), "/webhooks/link/<token>/"),
]


def normalized(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        for pattern, replacement in VARYING:
            line = pattern.sub(replacement, line)
        lines.append(line.rstrip())
    return lines


def block_after(page: Path, heading: str, lang: str = "text") -> str:
    """The first ``lang`` code block after ``heading`` in ``page``."""
    text = page.read_text()
    start = text.index(heading)
    for match in FENCE.finditer(text, start):
        if match["lang"] == lang:
            return match["code"]
    raise AssertionError(f"no {lang} block after {heading!r} in {page.name}")


def assert_page_shows(page: Path, heading: str, real_output: str) -> None:
    """The ``text`` block under ``heading`` is what a real run printed: each run of lines between
    ``...`` lines appears, in order and unbroken, in ``real_output`` (ports, pids, ids and
    passwords aside)."""
    shown = normalized(block_after(page, heading))
    real = normalized(real_output)
    chunks: list[list[str]] = [[]]
    for line in shown:
        if line.strip() in ELIDED:
            chunks.append([])
        else:
            chunks[-1].append(line)
    position = 0
    for chunk in filter(None, chunks):
        found = next(
            (
                i
                for i in range(position, len(real) - len(chunk) + 1)
                if real[i : i + len(chunk)] == chunk
            ),
            None,
        )
        assert found is not None, (
            f"{page.name} under {heading!r} shows lines a real run does not print:\n"
            + "\n".join(chunk)
            + "\n\nThe real run printed:\n"
            + "\n".join(real)
        )
        position = found + len(chunk)
