"""A site receiving the shop's webhooks: verify, store once, answer 2xx."""

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from django_hooks.core.errors import InvalidSignature
from django_hooks.core.signing import verify_headers
from receiver.models import ReceivedWebhook


@csrf_exempt  # the Standard Webhooks signature replaces CSRF protection here
@require_POST
def shop_webhook(request: HttpRequest) -> HttpResponse:
    try:
        webhook_id, _ = verify_headers(
            settings.RECEIVER_WEBHOOK_SECRET, request.headers, request.body
        )
    except InvalidSignature as exc:
        return JsonResponse({"error": exc.reason}, status=exc.status_code)
    payload = json.loads(request.body)
    ReceivedWebhook.objects.get_or_create(
        webhook_id=webhook_id, defaults={"type": payload["type"], "payload": payload}
    )
    return HttpResponse(status=204)
