"""Two views that store the same inbound call: one verified by ``@webhook_receiver``, one not."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from benchmarks.constants import BENCH_SECRET
from django_hooks.inbound import webhook_receiver
from django_hooks.models import InboundWebhook


@webhook_receiver("standard", secret=BENCH_SECRET, source="bench")
def verified(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=204)


@csrf_exempt
def plain(request: HttpRequest) -> HttpResponse:
    body = request.body
    InboundWebhook.objects.create(
        source="plain",
        provider="none",
        webhook_id=request.headers["webhook-id"],
        event_type="bench.inbound",
        headers=dict(request.headers),
        body=body,
    )
    return HttpResponse(status=204)


urlpatterns = [path("in/verified/", verified), path("in/plain/", plain)]
