"""One call, one ``request.webhook``: inline, under ``run_async=True`` and under
``hooks_reprocess``; and what a worker that lacks the handler records."""

import hashlib
import hmac
import io
import json
import time

import pytest
from django.core.management import call_command
from django.test import override_settings

from django_hooks.inbound.views import _build
from django_hooks.models import InboundWebhook
from django_hooks.testing import run_worker
from tests.inbound.test_decorator import standard_post
from tests.testapp import views

pytestmark = pytest.mark.django_db(transaction=True)

GUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
STRIPE_SECRET = "whsec_" + "stripe-test-secret"


@pytest.fixture(autouse=True)
def fresh_calls():
    views.calls.clear()
    _build.cache_clear()
    yield
    views.calls.clear()
    _build.cache_clear()


def github_post(client, path, body):
    signature = "sha256=" + hmac.new(views.GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        path,
        body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
        HTTP_X_GITHUB_EVENT="issues",
        HTTP_X_GITHUB_DELIVERY=GUID,
    )


def stripe_post(client, path, body, timestamp):
    digest = hmac.new(STRIPE_SECRET.encode(), b"%d." % timestamp + body, hashlib.sha256)
    return client.post(
        path,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=f"t={timestamp},v1={digest.hexdigest()}",
    )


# provider, secret, how to post one call, what its handler must see as (id, type, timestamp)
NOW = int(time.time())
SCHEMES = {
    "github": (
        views.GITHUB_SECRET,
        lambda client, path: github_post(client, path, b'{"action":"opened"}'),
        (GUID, "issues", None),
    ),
    "standard": (
        views.SECRET,
        lambda client, path: standard_post(client, path, msg_id="msg_same", timestamp=NOW),
        ("msg_same", "order.paid", NOW),
    ),
    "stripe": (
        STRIPE_SECRET,
        lambda client, path: stripe_post(
            client, path, b'{"id":"evt_1","type":"charge.succeeded"}', NOW
        ),
        ("evt_1", "charge.succeeded", NOW),
    ),
}


def seen(call):
    return (call.id, call.type, call.timestamp, call.payload, call.provider, call.source)


def inbound(provider, secret, *, run_async):
    handler = "tests.testapp.views.on_configured"
    return {
        "in": {"provider": provider, "secret": secret, "handler": handler, "run_async": run_async}
    }


@pytest.mark.parametrize("provider", SCHEMES)
def test_the_handler_sees_the_same_call_inline_queued_and_reprocessed(client, redis, provider):
    secret, post, (call_id, call_type, timestamp) = SCHEMES[provider]
    with override_settings(DJANGO_HOOKS={"INBOUND": inbound(provider, secret, run_async=False)}):
        assert post(client, "/hooks/in/in/").status_code == 204
    inline = views.calls[-1]
    assert (inline.id, inline.type, inline.timestamp) == (call_id, call_type, timestamp)

    InboundWebhook.objects.all().delete()
    _build.cache_clear()
    with override_settings(DJANGO_HOOKS={"INBOUND": inbound(provider, secret, run_async=True)}):
        assert post(client, "/hooks/in/in/").status_code == 202
        assert run_worker()
        queued = views.calls[-1]
        assert seen(queued) == seen(inline)

        call_command("hooks_reprocess", "--status", "any", stdout=io.StringIO())
        assert run_worker()
    reprocessed = views.calls[-1]
    assert len(views.calls) == 3
    assert seen(reprocessed) == seen(inline)
    assert InboundWebhook.objects.get().status == "processed"


def test_a_reprocessed_github_call_keeps_its_delivery_id_after_an_inline_run(client, redis):
    assert github_post(client, "/hooks/github/", b'{"action":"closed"}').status_code == 200
    record = InboundWebhook.objects.get()
    assert record.webhook_id.startswith("sha256:")  # the dedupe key is still the body's hash
    call_command("hooks_reprocess", str(record.pk), stdout=io.StringIO())
    assert run_worker()
    first, again = views.calls
    assert (again.id, again.type, again.timestamp) == (GUID, "issues", None)
    assert seen(again) == seen(first)


def test_a_payload_too_odd_to_store_is_parsed_again_for_a_queued_run(client, redis):
    body = b'{"type":"x","data":{"name":"a\\u0000b"}}'
    assert standard_post(client, "/hooks/standard/", body=body).status_code == 204
    record = InboundWebhook.objects.get()
    assert record.payload is None  # PostgreSQL cannot store the NUL
    call_command("hooks_reprocess", str(record.pk), stdout=io.StringIO())
    assert run_worker()
    assert [call.payload["data"]["name"] for call in views.calls] == ["a\x00b", "a\x00b"]


def test_a_call_stored_before_sender_ids_gets_its_id_from_the_stored_headers(redis):
    # As a row written by an older version: the dedupe key only, no sender_id or signed_at.
    record = InboundWebhook.objects.create(
        source="github",
        provider="github",
        webhook_id="sha256:" + "0" * 64,
        event_type="issues",
        headers={"x-github-delivery": GUID, "x-github-event": "issues"},
        body=b'{"action":"opened"}',
        payload={"action": "opened"},
        handler="tests.testapp.views:github",
        status="failed",
    )
    call_command("hooks_reprocess", str(record.pk), stdout=io.StringIO())
    assert run_worker()
    assert [call.id for call in views.calls] == [GUID]


def test_a_worker_without_the_handler_fails_the_call_and_says_to_restart(redis):
    # As a worker started before the view existed: the module imports, the handler is not in it.
    record = InboundWebhook.objects.create(
        source="shop",
        provider="standard",
        webhook_id="msg_new_view",
        event_type="order.paid",
        body=b"{}",
        payload={},
        handler="tests.testapp.views:added_after_the_worker_started",
    )
    with override_settings(DJANGO_HOOKS={"RETRY_SCHEDULE": []}):
        call_command("hooks_reprocess", str(record.pk), stdout=io.StringIO())
        assert run_worker()
    record.refresh_from_db()
    assert record.status == "failed" and record.processed_at is not None
    assert record.locked_until is None and record.attempts == 1
    assert "HandlerNotFound" in record.error
    assert "'tests.testapp.views:added_after_the_worker_started'" in record.error
    assert "restart them (hooks_worker or rqworker)" in record.error
    assert views.calls == []


def test_a_handler_module_gone_from_the_worker_fails_the_call_and_says_to_restart(redis):
    record = InboundWebhook.objects.create(
        source="shop",
        provider="standard",
        webhook_id="msg_gone",
        body=b"{}",
        payload={},
        handler="tests.testapp.renamed_views:standard",
    )
    with override_settings(DJANGO_HOOKS={"RETRY_SCHEDULE": []}):
        call_command("hooks_reprocess", str(record.pk), stdout=io.StringIO())
        assert run_worker()
    record.refresh_from_db()
    assert record.status == "failed"
    assert "'tests.testapp.renamed_views' cannot be imported" in record.error
    assert "restart them" in record.error


def test_a_missing_handler_is_retried_so_a_restarted_worker_runs_it(redis):
    from django_hooks.inbound.tasks import process_call
    from django_hooks.outbound.wakeups import get_queue

    record = InboundWebhook.objects.create(
        source="standard",
        provider="standard",
        webhook_id="msg_later_found",
        event_type="order.paid",
        body=b"{}",
        payload={"type": "order.paid"},
        handler="tests.testapp.views:standard",
    )
    receiver = views.standard
    del views.standard  # this worker runs code from before the receiver was added
    try:
        with override_settings(DJANGO_HOOKS={"RETRY_SCHEDULE": [60]}):
            call_command("hooks_reprocess", str(record.pk), stdout=io.StringIO())
            assert run_worker()
        record.refresh_from_db()
        assert record.status == "failed" and "restart" in record.error
        assert len(get_queue().scheduled_job_registry) == 1  # ...so the call is retried later,
    finally:
        views.standard = receiver
    assert process_call(record.pk) == "processed"  # ...when a restarted worker has the handler.
    record.refresh_from_db()
    assert (record.status, record.error, record.attempts) == ("processed", "", 2)
    assert [call.id for call in views.calls] == ["msg_later_found"]


def test_the_admin_shows_why_a_call_was_not_run(admin_client, redis):
    record = InboundWebhook.objects.create(
        source="shop",
        provider="standard",
        webhook_id="msg_admin",
        body=b"{}",
        payload={},
        handler="tests.testapp.views:added_after_the_worker_started",
    )
    with override_settings(DJANGO_HOOKS={"RETRY_SCHEDULE": []}):
        call_command("hooks_reprocess", str(record.pk), stdout=io.StringIO())
        run_worker()
    page = admin_client.get(f"/admin/django_hooks/inboundwebhook/{record.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "restart them (hooks_worker or rqworker)" in text
    assert "sender&#x27;s id" in text.lower()
    listing = admin_client.get("/admin/django_hooks/inboundwebhook/?status=failed")
    assert "msg_admin" in listing.content.decode()


def test_stored_ids_are_what_the_handler_saw(client):
    response = standard_post(client, "/hooks/standard/", msg_id="msg_stored", timestamp=NOW)
    assert response.status_code == 204
    record = InboundWebhook.objects.get()
    assert (record.sender_id, record.signed_at) == ("msg_stored", NOW)
    assert json.loads(bytes(record.body))["type"] == "order.paid"
