"""`make serve` stays true: `manage.py serve` brings up the admin (with the printed login), a
worker that delivers and sweeps, and an embedded Redis, and a Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from django_hooks.testing import free_port
from tests.docs.samples import DOCS, assert_page_shows

ROOT = Path(__file__).resolve().parents[1]
PROC = Path("/proc")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PROC.is_dir(), reason="finds child processes through /proc"),
]


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid``, with its command line."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = command_line(child)
                frontier.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s:\n{log.read_text()}")
        time.sleep(0.2)


def get(url: str, **kwargs) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, **kwargs)
    except requests.ConnectionError:
        return None


def test_serve_runs_the_site_and_worker_and_ctrl_c_stops_them_all(tmp_path):
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "EXAMPLE_DB": str(tmp_path / "serve.sqlite3"),
        "DJANGO_SUPERUSER_PASSWORD": "serve-test-password",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "REDIS_URL"):  # its own embedded Redis
        env.pop(name, None)
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        serve = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "example_project" / "manage.py"),
                "serve",
                "--port",
                str(port),
                "--sweep-every",
                "1",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: (r := get(f"{site}/admin/login/")) is not None and r.status_code == 200,
            90,
            "the admin login page",
            serve,
            log,
        )
        wait_until(lambda: "Press Ctrl-C to stop." in log.read_text(), 10, "the banner", serve, log)
        out = log.read_text()
        assert_page_shows(DOCS / "example.md", "## `make serve`", out)  # the page shows this run

        # The printed admin login works.
        assert "(user admin, password serve-test-password)" in out
        session = requests.Session()
        form = session.get(f"{site}/admin/login/", timeout=5).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
        logged_in = session.post(
            f"{site}/admin/login/?next=/admin/",
            timeout=5,
            allow_redirects=False,
            data={
                "username": "admin",
                "password": "serve-test-password",
                "csrfmiddlewaretoken": token,
                "next": "/admin/",
            },
            headers={"Referer": f"{site}/admin/login/"},
        )
        assert logged_in.status_code == 302 and logged_in.headers["Location"] == "/admin/"

        # The printed customer login sees only its own endpoint, and the worker delivers to it.
        password = re.search(r"curl -u acme:(\S+) ", out)[1]

        def delivered():
            r = get(f"{site}/api/hooks/deliveries/", auth=("acme", password))
            rows = r.json()["results"] if r is not None and r.status_code == 200 else []
            return rows and all(row["status"] == "succeeded" for row in rows) and rows

        assert len(wait_until(delivered, 30, "acme's first delivery", serve, log)) == 1
        endpoints = get(f"{site}/api/hooks/endpoints/", auth=("acme", password)).json()["results"]
        assert [e["url"] for e in endpoints] == [f"{site}/receiver/acme/webhooks/"]

        # The printed signed link opens Acme's portal, and only Acme's.
        printed = rf"({re.escape(site)}/webhooks/link/\S+)  \(Acme Ltd's signed link"
        link = re.search(printed, out)[1]
        portal = get(link)
        assert portal.status_code == 200 and portal.url == f"{site}/webhooks/"
        assert "/receiver/acme/webhooks/" in portal.text and "/receiver/globex/" not in portal.text

        children = descendants(serve.pid)
        commands = " | ".join(children.values())
        for expected in ("runserver", "hooks_worker", "redis-server"):
            assert expected in commands, commands
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            returncode = serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            raise
    assert returncode == 0, log.read_text()
    deadline = time.monotonic() + 5
    while (left := {pid: cmd for pid, cmd in children.items() if alive(pid)}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not left, f"still running after Ctrl-C: {left}"
    assert "Stopped the site, the worker and Redis." in log.read_text()
