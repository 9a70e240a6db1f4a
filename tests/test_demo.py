"""`make demo` stays true: the example project's end-to-end run exits 0 with every row verified."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_delivers_and_verifies_every_webhook(tmp_path, redis_url):
    env = {**os.environ, "EXAMPLE_DB": str(tmp_path / "demo.sqlite3"), "REDIS_URL": redis_url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "example_project" / "manage.py"), "demo", "--timeout", "60"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All webhooks delivered and verified." in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("msg_")]
    assert len(rows) == 4 and all(
        " succeeded " in row and row.rstrip().endswith("yes") for row in rows
    )
