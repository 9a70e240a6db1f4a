"""A site receiving the shop's webhooks, one URL per customer account: django-hooks verifies
each call with that customer's secret, stores it and drops duplicates."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from django_hooks.inbound import webhook_receiver
from receiver.models import ReceivedWebhook


def customer_secret(request: HttpRequest) -> str:
    """The signing secret the shop gave this customer when it created the endpoint."""
    customer = request.resolver_match.kwargs["customer"]  # type: ignore[union-attr]
    try:
        return str(settings.RECEIVER_WEBHOOK_SECRETS[customer])
    except KeyError:
        raise Http404(f"no receiver for customer {customer!r}") from None


@webhook_receiver("standard", secret=customer_secret, source="shop")
def shop_webhook(request: HttpRequest, customer: str) -> HttpResponse:
    hook = request.webhook  # type: ignore[attr-defined]
    ReceivedWebhook.objects.create(
        customer=customer, webhook_id=hook.id, type=hook.type, payload=hook.payload
    )
    return HttpResponse(status=204)
