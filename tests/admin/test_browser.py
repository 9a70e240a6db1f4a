"""The admin in a real Chromium (Debian's package, driven by Playwright), against the example
project served on 127.0.0.1 with a real RQ worker and a real receiver: log in, create an
endpoint, send a test event, see it delivered, retry a failed delivery, rotate the secret, and
screenshot the endpoint's health page into test-artifacts/.

Skipped when no Chromium is installed, unless DJANGO_HOOKS_BROWSER_TESTS=required (as in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from django_hooks.testing import free_port, wait_for_port
from tests.receiver import Reply

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "example_project" / "manage.py"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PASSWORD = "browser-test-password"  # a throwaway database


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = find_chromium()
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None

if CHROMIUM is None or sync_playwright is None:
    missing = "no Chromium (apt-get install chromium)" if CHROMIUM is None else "no playwright"
    if os.environ.get("DJANGO_HOOKS_BROWSER_TESTS") == "required":
        raise RuntimeError(f"Browser tests are required but {missing} is available.")
    pytest.skip(f"Browser tests skipped: {missing} on this machine.", allow_module_level=True)

pytestmark = pytest.mark.slow


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ExampleSite:
    """The example project on a free port, its own SQLite file, and a real worker."""

    def __init__(self, workdir: Path, redis_url: str) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.admin.example_settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example_project")]),
            "EXAMPLE_DB": str(workdir / "example.sqlite3"),
            "REDIS_URL": redis_url,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        }
        self.logs = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def __enter__(self) -> ExampleSite:
        self.manage("migrate", "--verbosity", "0")
        self.manage(
            "createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.com"
        )
        server = self.start("runserver", "runserver", f"127.0.0.1:{self.port}", "--noreload")
        self.start(
            "worker",
            "rqworker",
            "default",
            "--with-scheduler",
            "--worker-class",
            "rq.worker.SimpleWorker",
        )
        wait_for_port(self.port, server)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            stop(process)


@pytest.fixture
def site(redis_url, redis):
    with tempfile.TemporaryDirectory(prefix="django-hooks-browser-") as workdir:
        with ExampleSite(Path(workdir), redis_url) as example:
            yield example


@pytest.fixture
def browser_page():
    with tempfile.TemporaryDirectory(prefix="django-hooks-chromium-") as profile:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1440, "height": 900},
            )
            context.set_default_timeout(20_000)
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()


SEED_CHART = """
import datetime as dt, random
from django.utils import timezone
from django_hooks.models import Delivery, Endpoint, Event
endpoint = Endpoint.objects.get(pk={pk})
event = Event.objects.create(type="order.paid", data={{"seeded": True}})
now, rows, rng = timezone.now(), [], random.Random(4)
for hour in range(2, 48):
    for _ in range(rng.randint(6, 14)):
        failed = 20 <= hour <= 26 or rng.random() < 0.05
        rows.append(Delivery(event=event, endpoint=endpoint, attempts=1,
                             status="failed" if failed else "succeeded",
                             created_at=now - dt.timedelta(hours=hour, minutes=rng.randint(0, 59))))
Delivery.objects.bulk_create(rows)
"""


def wait_for_row(page, url: str, text: str, timeout: float = 30) -> None:
    """Reload the list until a row shows ``text`` (the worker runs in another process)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.locator("#result_list tbody tr", has_text=text).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no row with {text!r} at {url} after {timeout}s")
        time.sleep(0.3)


def test_the_admin_console_in_a_real_browser(site, browser_page, receiver):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())

    # Log in.
    page.goto(f"{site.url}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()

    # Create an endpoint pointing at the local receiver.
    page.goto(f"{site.url}/admin/django_hooks/endpoint/add/")
    page.fill("#id_url", receiver.url("/hook"))
    page.fill("#id_description", "Local receiver")
    page.fill("#id_event_types", "order.*\ninvoice.paid")  # one per line, as typed
    page.get_by_label("Header 1 name").fill("X-Api-Key")
    page.get_by_label("Header 1 value").fill("browser-key")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    change_url = page.url
    endpoint_id = int(change_url.rstrip("/").split("/")[-2])

    # Reveal the secret (logged), then send a test event and see it delivered.
    page.click("input[value='Reveal secret']")
    secret = page.inner_text("#hooks-secret").strip()
    assert secret.startswith("whsec_")
    page.goto(change_url)
    page.click("input[value='Send test event']")
    expect(page.locator(".messagelist")).to_contain_text("sent.")
    deliveries = f"{site.url}/admin/django_hooks/delivery/"
    wait_for_row(page, deliveries, "succeeded")
    expect(page.locator("#result_list")).to_contain_text("webhook.test")
    (first,) = receiver.to("/hook")
    assert Webhook(secret).verify(first.body, first.headers)["type"] == "webhook.test"
    assert first.headers["x-api-key"] == "browser-key"

    # A failed delivery (no retries in these settings), retried from the list.
    receiver.script("/hook", Reply(500, body=b"down for maintenance"))
    page.goto(change_url)
    page.click("input[value='Send test event']")
    wait_for_row(page, deliveries + "?status=failed", "failed")
    checkbox = page.locator("#result_list tbody tr", has_text="failed").first.locator(
        "input.action-select"
    )
    failed_id = checkbox.get_attribute("value")
    checkbox.check()
    page.select_option("select[name=action]", "retry")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("1 deliveries queued again.")
    deadline = time.monotonic() + 30
    while page.goto(deliveries + "?status=failed") and page.locator("#result_list").count():
        assert time.monotonic() < deadline, "the retried delivery never left 'failed'"
        time.sleep(0.3)
    expect(page.locator("body")).to_contain_text("0 deliveries")
    assert len(receiver.to("/hook")) == 3

    # Its change page lists both attempts, the failed one with the receiver's answer.
    page.goto(f"{deliveries}{failed_id}/change/")
    expect(page.locator(".field-status_display")).to_contain_text("succeeded")
    expect(page.locator("body")).to_contain_text("down for maintenance")
    expect(page.locator("body")).to_contain_text("webhook-signature")

    # Rotate the secret: shown once; the next webhook is signed with the new one (and the old).
    page.goto(change_url)
    page.click("input[value='Rotate secret']")
    new_secret = page.inner_text("#hooks-secret").strip()
    assert new_secret.startswith("whsec_") and new_secret != secret
    page.goto(change_url)
    assert new_secret not in page.content() and secret not in page.content()
    page.click("input[value='Send test event']")
    deadline = time.monotonic() + 20
    while len(receiver.to("/hook")) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    latest = receiver.to("/hook")[-1]
    Webhook(new_secret).verify(latest.body, latest.headers)
    Webhook(secret).verify(latest.body, latest.headers)

    # The health page, with two days of history behind the chart, as the artefact.
    site.manage("shell", "-c", SEED_CHART.format(pk=endpoint_id))
    page.goto(change_url)
    expect(page.locator("#hooks-health svg")).to_be_visible()
    assert page.locator("#hooks-health svg g rect").count() == 96  # 48 hours × 2 series
    health = page.inner_text("#hooks-health")
    assert "receiving" in health and "success rate (24 h)" in health.lower()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "endpoint-change-page.png"), full_page=True)
    page.locator("#hooks-health").screenshot(path=str(ARTIFACTS / "endpoint-health.png"))
    page.goto(f"{site.url}/admin/django_hooks/endpoint/")
    page.screenshot(path=str(ARTIFACTS / "endpoint-list.png"))
    listing = page.inner_text("#result_list")
    assert receiver.url("/hook") in listing and "order.*, invoice.paid" in listing
    expect(page.locator("#result_list tbody th.field-id").first).to_have_text(str(endpoint_id))

    # The reveal and the rotation were recorded in the admin log.
    log = site.manage(
        "shell",
        "-c",
        (
            "from django.contrib.admin.models import LogEntry; import json; "
            "print(json.dumps(list(LogEntry.objects.order_by('pk').values_list('change_message', flat=True))))"
        ),
    )
    messages = json.loads(log.strip().splitlines()[-1])
    assert "Revealed the signing secret." in messages and "Rotated the signing secret." in messages
