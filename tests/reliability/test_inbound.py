"""Inbound under concurrency and crashes: one webhook posted 50 times at once to two server
processes runs its handler once; an async handler whose worker is killed mid-run runs again
and completes once."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import threading
import time

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from django_hooks.core.ids import new_id
from django_hooks.core.signing import Signer
from django_hooks.models import InboundWebhook
from django_hooks.testing import free_port
from tests.reliability.harness import ROOT, wait_until
from tests.reliability.receivers import SECRET
from tests.testapp.models import Order

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def signed(body: bytes, msg_id: str) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Signer([SECRET]).header(msg_id, timestamp, body),
    }


@pytest.fixture
def servers(worker_pool, tmp_path):
    """Two Django server processes on the test database, as two web workers behind a proxy.
    Their logs (with the traceback of any 500) are in ``server-<port>.log`` under ``tmp_path``."""
    pool = worker_pool()
    ports = [free_port(), free_port()]
    logs = [(tmp_path / f"server-{port}.log").open("w") for port in ports]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=pool.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for port, log in zip(ports, logs, strict=True)
    ]

    def up(port: int) -> bool:
        try:
            return (
                requests.get(f"http://127.0.0.1:{port}/hooks/once/", timeout=1).status_code == 405
            )
        except requests.ConnectionError:
            return False

    try:
        for port in ports:
            wait_until(lambda port=port: up(port), timeout=30, what=f"a server on {port}")
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
        for log in logs:
            log.close()


def server_errors(tmp_path) -> str:
    """The tracebacks the servers logged, for an assertion's message."""
    return "\n".join(
        log.read_text()[log.read_text().find("Traceback") :]
        for log in sorted(tmp_path.glob("server-*.log"))
        if "Traceback" in log.read_text()
    )


def test_the_same_webhook_posted_50_times_at_once_runs_its_handler_once(servers, tmp_path):
    msg_id = new_id()
    body = json.dumps({"type": "order.paid", "data": {"id": 1}}).encode()
    barrier = threading.Barrier(50)
    statuses: list[int] = []

    def post(n: int) -> None:
        session = requests.Session()
        session.trust_env = False
        barrier.wait()
        response = session.post(
            f"{servers[n % 2]}/hooks/once/", data=body, headers=signed(body, msg_id), timeout=30
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # One ran it; 49 were told "duplicate".
    assert sorted(statuses) == [200] * 49 + [204], server_errors(tmp_path)
    assert Order.objects.filter(status="ran").count() == 1
    record = InboundWebhook.objects.get()
    assert (record.status, record.attempts) == ("processed", 1)


@pytest.mark.urls("tests.reliability.receivers")
def test_an_async_handler_whose_worker_is_killed_runs_again_and_completes_once(
    worker_pool, client, tmp_path
):
    trace = tmp_path / "trace"
    trace.touch()
    pool = worker_pool()
    (first,) = pool.start(1)
    msg_id = new_id()
    body = json.dumps({"type": "job.run", "data": {"trace": str(trace)}}).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed(body, msg_id).items()}
    response = client.post("/hooks/slow-once/", body, content_type="application/json", **headers)
    assert response.status_code == 202

    wait_until(lambda: "started" in trace.read_text(), timeout=30, what="the handler to start")
    pool.kill(first)  # mid-run
    record = InboundWebhook.objects.get()
    assert (record.status, record.attempts) == ("received", 1)
    assert record.locked_until > timezone.now(), "the dead run still holds its lease"

    # Time-travelled: the lease ran out and the call is older than the sweep's grace.
    past = timezone.now() - dt.timedelta(seconds=61)
    InboundWebhook.objects.update(locked_until=past, received_at=past)
    pool.start(1)
    call_command("hooks_sweep", stdout=io.StringIO())
    wait_until(lambda: "done" in trace.read_text(), timeout=30, what="the handler to complete")
    wait_until(
        lambda: InboundWebhook.objects.get().status == "processed",
        timeout=30,
        what="the call to be marked processed",
    )

    assert trace.read_text().splitlines() == ["started", "started", "done"]
    assert InboundWebhook.objects.get().attempts == 2
    # Another sweep finds nothing: the call never runs a third time.
    call_command("hooks_sweep", stdout=io.StringIO())
    assert trace.read_text().splitlines() == ["started", "started", "done"]
