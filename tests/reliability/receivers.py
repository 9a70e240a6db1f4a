"""Inbound receivers of the reliability suite; their handlers leave traces other processes see."""

from __future__ import annotations

import time
from pathlib import Path

from django.http import HttpResponse
from django.urls import path

from django_hooks.inbound import webhook_receiver
from tests.testapp.models import Order

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@webhook_receiver("standard", secret=SECRET, source="reliability-once")
def once(request):
    """Each run is a row: the count of rows is the count of runs, across server processes."""
    time.sleep(0.2)  # a handler doing real work: duplicates arrive while it runs
    Order.objects.create(total=1, status="ran")
    return HttpResponse(status=204)


@webhook_receiver("standard", secret=SECRET, source="reliability-async", run_async=True)
def slow_once(request):
    """Appends ``started`` to a trace file; the first run then blocks until its worker is
    killed, a later one appends ``done``."""
    trace = Path(request.webhook.payload["data"]["trace"])
    with trace.open("a") as f:
        f.write("started\n")
    if trace.read_text().count("started") == 1:
        time.sleep(600)
    with trace.open("a") as f:
        f.write("done\n")
    return HttpResponse(status=204)


urlpatterns = [
    path("hooks/once/", once),
    path("hooks/slow-once/", slow_once),
]
