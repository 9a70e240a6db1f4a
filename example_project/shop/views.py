"""The shop receiving GitHub's webhooks (say, to note each push to its storefront theme)."""

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from django_hooks.inbound import webhook_receiver

logger = logging.getLogger(__name__)


@webhook_receiver("github", secret=settings.GITHUB_WEBHOOK_SECRET)
def github_webhook(request: HttpRequest) -> HttpResponse:
    # Runs only for a call signed with the shared secret, once per X-GitHub-Delivery id; the call
    # is already stored as an InboundWebhook (see the admin's inbound calls).
    hook = request.webhook  # type: ignore[attr-defined]
    if hook.type == "push":
        logger.info("GitHub push to %s by %s", hook.payload.get("ref"),
                    (hook.payload.get("pusher") or {}).get("name"))  # fmt: skip
    return HttpResponse(status=204)
