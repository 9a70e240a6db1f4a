"""A signal receiver that raises never stops django-hooks, and is logged with its traceback."""

import asyncio
import logging

import pytest
from django.test import Client

from django_hooks import signals
from django_hooks.models import Endpoint, InboundWebhook
from django_hooks.outbound.state import disable_endpoint
from tests.inbound.test_decorator import standard_post
from tests.testapp import views

NAMES = ["delivery_succeeded", "delivery_failed", "endpoint_disabled", "webhook_received"]
SIGNALS = [getattr(signals, name) for name in NAMES]


def broken_receiver(sender, **kwargs):
    raise RuntimeError("the receiver's own bug")


@pytest.fixture
def connected():
    for signal in SIGNALS:
        signal.connect(broken_receiver, dispatch_uid="test.broken")
    yield
    for signal in SIGNALS:
        signal.disconnect(dispatch_uid="test.broken")


def failures(caplog):
    """The logged failures of this module's broken receiver (the package's own receivers, such
    as the owner emails', are not sent what they expect by these bare sends)."""
    return [
        r
        for r in caplog.records
        if r.name == "django_hooks.signals" and "broken_receiver" in r.getMessage()
    ]


@pytest.mark.parametrize("name", NAMES)
def test_send_robust_logs_a_receiver_that_raised(name, connected, caplog):
    signal = getattr(signals, name)
    responses = signal.send_robust(None)
    assert isinstance(dict(responses)[broken_receiver], RuntimeError)
    (record,) = failures(caplog)
    assert record.levelno == logging.ERROR
    assert "broken_receiver" in record.getMessage() and name in record.getMessage()
    assert record.exc_info[1] is dict(responses)[broken_receiver]  # the traceback is kept


def test_asend_robust_logs_too(connected, caplog):
    asyncio.run(signals.delivery_failed.asend_robust(None))
    assert len(failures(caplog)) == 1


@pytest.mark.django_db(transaction=True)
def test_endpoint_disabled_receivers_are_logged(connected, caplog):
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/")
    assert disable_endpoint(endpoint, "gone", by="system")  # autocommit: sent at once
    assert "endpoint_disabled" in failures(caplog)[0].getMessage()


@pytest.mark.django_db(transaction=True)
def test_webhook_received_receivers_are_logged_and_the_handler_still_runs(connected, caplog):
    views.calls.clear()
    assert standard_post(Client(), "/hooks/standard/").status_code == 204
    assert len(views.calls) == 1 and InboundWebhook.objects.get().status == "processed"
    assert "webhook_received" in failures(caplog)[0].getMessage()
    views.calls.clear()
