"""`make demo` stays true: the example project's end-to-end run exits 0, each customer's order
events delivered to its own endpoint and verified, the signed GitHub call in, the forged one out."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.samples import DOCS, assert_page_shows

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_delivers_and_verifies_every_webhook(tmp_path, redis_url):
    env = {**os.environ, "EXAMPLE_DB": str(tmp_path / "demo.sqlite3"), "REDIS_URL": redis_url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "example_project" / "manage.py"), "demo", "--timeout", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.rstrip().endswith("All webhooks delivered and verified.")
    assert_page_shows(DOCS / "example.md", "## `make demo`", out)  # the page shows this run

    sections = dict(re.findall(r"^(\w[\w ]+) \((\w+)\): endpoint", out, re.MULTILINE))
    assert sorted(sections.values()) == ["acme", "globex"]
    for slug, expected in [
        ("acme", ["order.created", "order.updated"]),
        ("globex", ["order.created", "order.deleted"]),
    ]:
        section = out.split(f"({slug}): endpoint", 1)[1].split("\n\n", 1)[0]
        rows = [line.split() for line in section.splitlines() if line.strip().startswith("msg_")]
        assert [row[1] for row in rows] == expected, section
        assert all(row[2] == "succeeded" and row[-1] == "yes" for row in rows), section
        assert f"/receiver/{slug}/webhooks/" in section
        assert "Its receiver got 2 webhooks, all of them its own." in section

    assert re.search(
        r"signed push: +accepted \(HTTP 204, stored as inbound call \d+, processed\)", out
    )
    assert re.search(r"forged push: +refused \(HTTP 401 ", out)
    assert re.search(
        r"signed with acme's secret, sent to globex's receiver: +refused \(HTTP 401 ", out
    )
