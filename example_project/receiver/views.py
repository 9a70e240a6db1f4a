"""A site receiving the shop's webhooks: django-hooks verifies, stores and dedupes each call."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from django_hooks.inbound import webhook_receiver
from receiver.models import ReceivedWebhook


@webhook_receiver("standard", secret=settings.RECEIVER_WEBHOOK_SECRET, source="shop")
def shop_webhook(request: HttpRequest) -> HttpResponse:
    hook = request.webhook  # type: ignore[attr-defined]
    ReceivedWebhook.objects.create(webhook_id=hook.id, type=hook.type, payload=hook.payload)
    return HttpResponse(status=204)
