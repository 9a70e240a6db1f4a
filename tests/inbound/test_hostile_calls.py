"""Issue 15, inbound: a signed body with NaN is a clear 400 (not a 500 that stores nothing), and
two long sender ids sharing their first 255 characters are two calls, not one."""

from __future__ import annotations

import pytest
from django.test import Client

from django_hooks.inbound.decorators import stored_id
from django_hooks.models import InboundWebhook
from tests.inbound.test_decorator import standard_post

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_signed_body_with_nan_is_a_400_naming_it(constant):
    body = b'{"type": "order.paid", "data": {"total": ' + constant + b"}}"
    response = standard_post(Client(), "/hooks/standard/", body=body)
    assert response.status_code == 400
    assert constant.lstrip(b"-") in response.content
    assert not InboundWebhook.objects.exists()


def test_long_ids_that_share_their_first_255_characters_do_not_collide():
    client = Client()
    first, second = "msg_" + "a" * 300 + "1", "msg_" + "a" * 300 + "2"
    assert standard_post(client, "/hooks/standard/", msg_id=first).status_code == 204
    assert standard_post(client, "/hooks/standard/", msg_id=second).status_code == 204
    assert InboundWebhook.objects.count() == 2
    assert set(InboundWebhook.objects.values_list("webhook_id", flat=True)) == {
        stored_id(first),
        stored_id(second),
    }
    # ...and the same long id again is still one call.
    assert standard_post(client, "/hooks/standard/", msg_id=first).status_code in (200, 204)
    assert InboundWebhook.objects.count() == 2


def test_receiver_secrets_stay_out_of_django_500_reports(monkeypatch, rf):
    """An unexpected error while verifying (a bug, a broken verifier) reaches Django's error
    report; the secrets in the receiving view's frames are shown as ********."""
    from django.views.debug import ExceptionReporter

    from django_hooks.inbound import verifiers
    from tests.testapp import views

    def broken(self, body, headers, secrets, **kwargs):  # holds the secrets, as a verifier does
        raise ZeroDivisionError("a verifier bug")

    monkeypatch.setattr(type(verifiers.get_verifier("standard")), "verify_signature", broken)
    request = rf.post("/hooks/standard/", b"{}", content_type="application/json")
    with pytest.raises(ZeroDivisionError) as caught:
        views.standard(request)
    reporter = ExceptionReporter(request, caught.type, caught.value, caught.tb)
    frames = reporter.get_traceback_frames()
    assert "receive" in [frame["function"] for frame in frames]
    shown = repr([frame["vars"] for frame in frames]) + reporter.get_traceback_html()
    assert views.SECRET not in shown
    assert views.SECRET.removeprefix("whsec_") not in shown


def test_a_retried_call_shows_the_stored_calls_type_and_id_not_the_retrys_unsigned_headers():
    """GitHub signs the body only: a retry carrying the same body under another X-GitHub-Event
    and X-GitHub-Delivery must not make the handler see those."""
    from tests.inbound.test_operations import github_post
    from tests.testapp import views

    views.calls.clear()
    client = Client(raise_request_exception=False)
    first = github_post(client, "/hooks/flaky-github/", event="push", delivery="d-1")
    assert first.status_code == 500  # the handler failed: the call is stored, to run again
    again = github_post(client, "/hooks/flaky-github/", event="member", delivery="d-forged")
    assert again.status_code == 200
    seen = views.calls[-1]
    assert (seen.type, seen.id) == ("push", "d-1")
