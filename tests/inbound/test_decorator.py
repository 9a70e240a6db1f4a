"""@webhook_receiver over Django's test client: verification, storage, dedupe, async."""

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client, override_settings

from django_hooks import signals
from django_hooks.core.ids import new_id
from django_hooks.core.signing import Signer
from django_hooks.models import InboundWebhook
from django_hooks.testing import run_worker
from tests.testapp import views

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_calls():
    views.calls.clear()
    yield
    views.calls.clear()


def standard_post(
    client,
    path,
    data=None,
    *,
    secret=views.SECRET,
    msg_id=None,
    timestamp=None,
    body=None,
    **headers,
):
    body = (
        body
        if body is not None
        else json.dumps({"type": "order.paid", "data": data or {"id": 1}}).encode()
    )
    msg_id = msg_id or new_id()
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(timestamp),
        "HTTP_WEBHOOK_SIGNATURE": Signer([secret]).header(msg_id, timestamp, body),
    }
    signed.update(headers)
    return client.post(path, body, content_type="application/json", **signed)


def test_a_verified_call_is_stored_then_handled_once():
    client = Client(enforce_csrf_checks=True)
    response = standard_post(
        client, "/hooks/standard/", msg_id="msg_1", HTTP_AUTHORIZATION="Bearer x"
    )
    assert response.status_code == 204
    (call,) = views.calls
    assert (call.id, call.type, call.provider, call.source) == (
        "msg_1",
        "order.paid",
        "standard",
        "standard",
    )
    assert call.payload == {"type": "order.paid", "data": {"id": 1}}
    record = InboundWebhook.objects.get()
    assert call.record.pk == record.pk
    assert (record.status, record.webhook_id, record.event_type, record.attempts) == (
        "processed",
        "msg_1",
        "order.paid",
        1,
    )
    assert json.loads(bytes(record.body)) == call.payload
    assert "authorization" not in record.headers and record.headers["webhook-id"] == "msg_1"
    assert record.processed_at is not None


def test_a_duplicate_id_is_acknowledged_without_running_the_handler_again(client):
    assert standard_post(client, "/hooks/standard/", msg_id="msg_dup").status_code == 204
    again = standard_post(client, "/hooks/standard/", msg_id="msg_dup")
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "id": "msg_dup"}
    assert len(views.calls) == 1 and InboundWebhook.objects.count() == 1


@pytest.mark.skipif("connection.vendor == 'sqlite'", reason="needs concurrent connections")
def test_concurrent_duplicates_run_the_handler_once():
    results = []
    barrier = threading.Barrier(8)

    def post():
        try:
            barrier.wait()
            results.append(
                standard_post(Client(), "/hooks/standard/", msg_id="msg_race").status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] * 7 + [204]
    assert len(views.calls) == 1 and InboundWebhook.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"secret": "whsec_" + "B" * 32}, 401, "no matching signature"),
        ({"timestamp": -301}, 401, "too old"),
        ({"timestamp": +301}, 401, "future"),
        ({"HTTP_WEBHOOK_SIGNATURE": "garbage"}, 400, ""),
        ({"HTTP_WEBHOOK_SIGNATURE": ""}, 400, "webhook-signature"),
    ],
)
def test_unverified_calls_get_a_4xx_json_reason_and_never_reach_the_handler(
    client, change, status, reason
):
    if "timestamp" in change:  # an offset from now, applied at run time
        change = {"timestamp": int(time.time()) + change["timestamp"]}
    response = standard_post(client, "/hooks/standard/", **change)
    assert response.status_code == status
    assert reason in response.json()["error"]
    assert views.calls == [] and not InboundWebhook.objects.exists()


def test_a_tampered_body_is_rejected(client):
    msg_id, timestamp = new_id(), int(time.time())
    body = b'{"type":"order.paid","data":{"id":1}}'
    response = client.post(
        "/hooks/standard/",
        body.replace(b"1", b"2"),
        content_type="application/json",
        HTTP_WEBHOOK_ID=msg_id,
        HTTP_WEBHOOK_TIMESTAMP=str(timestamp),
        HTTP_WEBHOOK_SIGNATURE=Signer([views.SECRET]).header(msg_id, timestamp, body),
    )
    assert response.status_code == 401 and views.calls == []
    assert (
        Signer([views.SECRET]).header(msg_id, timestamp, body)[3:] not in response.content.decode()
    )


def test_missing_headers_get_a_400_naming_the_header(client):
    response = client.post("/hooks/standard/", b"{}", content_type="application/json")
    assert response.status_code == 400 and "webhook-id" in response.json()["error"]


def test_only_post_is_allowed(client):
    response = client.get("/hooks/standard/")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "POST" in response.json()["error"]


def test_an_oversized_body_is_413(client):
    response = standard_post(client, "/hooks/small/", {"pad": "x" * 200})
    assert response.status_code == 413 and "100 bytes" in response.json()["error"]
    assert views.calls == []


def test_rotation_accepts_the_old_secret_and_rejects_others(client):
    assert standard_post(client, "/hooks/rotating/", secret=views.OLD_SECRET).status_code == 204
    assert standard_post(client, "/hooks/rotating/", secret=views.SECRET).status_code == 204
    assert standard_post(client, "/hooks/rotating/", secret="whsec_" + "C" * 32).status_code == 401
    assert len(views.calls) == 2


def test_a_callable_secret_is_resolved_per_request(client):
    assert standard_post(client, f"/hooks/by-tenant/?key={views.SECRET}").status_code == 204
    assert standard_post(client, f"/hooks/by-tenant/?key={views.OLD_SECRET}").status_code == 401
    missing = standard_post(client, "/hooks/by-tenant/")
    assert missing.status_code == 500 and missing.json() == {"error": "receiver misconfigured"}


def test_a_failed_handler_is_recorded_and_runs_again_on_the_senders_retry():
    client = Client(raise_request_exception=False)
    assert standard_post(client, "/hooks/flaky/", msg_id="msg_f").status_code == 500
    record = InboundWebhook.objects.get()
    assert record.status == "failed" and "database unavailable" in record.error
    assert standard_post(client, "/hooks/flaky/", msg_id="msg_f").status_code == 204
    record.refresh_from_db()
    assert (record.status, record.attempts) == ("processed", 2)
    assert standard_post(client, "/hooks/flaky/", msg_id="msg_f").status_code == 200
    assert len(views.calls) == 2


def test_webhook_received_is_sent_after_verification(client):
    seen = []
    signals.webhook_received.connect(
        lambda sender, webhook, **kw: seen.append(webhook.id), weak=False, dispatch_uid="t"
    )
    try:
        standard_post(client, "/hooks/standard/", msg_id="msg_sig")
        standard_post(client, "/hooks/standard/", secret="whsec_" + "B" * 32)
    finally:
        signals.webhook_received.disconnect(dispatch_uid="t")
    assert seen == ["msg_sig"]


def test_run_async_answers_202_and_the_worker_runs_the_handler_with_retries(client, redis):
    with override_settings(DJANGO_HOOKS={"RETRY_SCHEDULE": [0, 0]}):
        response = standard_post(client, "/hooks/later/", {"fail_times": 1}, msg_id="msg_a")
        assert response.status_code == 202 and response.json()["status"] == "accepted"
        assert views.calls == []
        assert InboundWebhook.objects.get().status == "received"
        for _ in range(5):
            run_worker()
    record = InboundWebhook.objects.get()
    assert (record.status, record.attempts) == ("processed", 2)
    assert [call.id for call in views.calls] == ["msg_a", "msg_a"]
    assert views.calls[0].payload["data"] == {"fail_times": 1}


def test_settings_configured_receivers(client):
    inbound = {
        "shop": {
            "provider": "standard",
            "secret": views.SECRET,
            "handler": "tests.testapp.views.on_configured",
        }
    }
    with override_settings(DJANGO_HOOKS={"INBOUND": inbound}):
        assert standard_post(client, "/hooks/in/shop/").status_code == 204
        assert client.post("/hooks/in/nope/").status_code == 404
    assert views.calls[0].source == "shop"
