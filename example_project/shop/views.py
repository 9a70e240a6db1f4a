"""The shop receiving GitHub's webhooks (say, to note each push to its storefront theme)."""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_hooks.inbound import webhook_receiver
from django_hooks.portal import signed_link
from shop.models import Customer

logger = logging.getLogger(__name__)


@webhook_receiver("github", secret=settings.GITHUB_WEBHOOK_SECRET)
def github_webhook(request: HttpRequest) -> HttpResponse:
    # Runs only for a call signed with the shared secret, once per X-GitHub-Delivery id; the call
    # is already stored as an InboundWebhook (see the admin's inbound calls).
    hook = request.webhook  # type: ignore[attr-defined]
    if hook.type == "push":
        logger.info(
            "GitHub push to %s by %s",
            hook.payload.get("ref"),
            (hook.payload.get("pusher") or {}).get("name"),
        )
    return HttpResponse(status=204)


@login_required
def account_webhooks(request: HttpRequest) -> HttpResponse:
    """The customer's account page embedding the webhook portal, opened for its customer alone
    by a signed link (the portal is also at /webhooks/ behind the same login)."""
    customer = Customer.objects.filter(user=request.user).first()
    if customer is None:
        return HttpResponse("This login has no customer account.", status=403)
    link = signed_link(customer, expires_in=300)
    return render(
        request, "shop/account_webhooks.html", {"customer": customer, "portal_link": link}
    )
