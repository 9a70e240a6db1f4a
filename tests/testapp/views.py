"""Receivers used by the inbound tests; each records what its handler saw."""

from django.http import HttpResponse, JsonResponse

from django_hooks.inbound import TenantSecret, webhook_receiver

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_" + "A" * 32
GITHUB_SECRET = "It's a Secret to Everybody"

calls: list = []


def record(request):
    calls.append(request.webhook)


@webhook_receiver("standard", secret=SECRET)
def standard(request):
    record(request)
    return HttpResponse(status=204)


@webhook_receiver("standard", secret=[SECRET, OLD_SECRET], source="rotating")
def rotating(request):
    record(request)
    return HttpResponse(status=204)


@webhook_receiver("standard", secret=lambda request: request.GET.get("key", ""), source="by-tenant")
def by_tenant(request):
    record(request)
    return HttpResponse(status=204)


TENANT_SECRETS = {
    "acme": ["whsec_" + "QWNtZUFjbWVBY21lQWNtZUFjbWVBY21lQWNtZUFj", "whsec_" + "B" * 32],
    "globex": ["whsec_" + "R2xvYmV4R2xvYmV4R2xvYmV4R2xvYmV4R2xvYmV4"],
}


def tenant_secret(request):
    """Picks the tenant from the URL, as a multi-tenant site would from its own routing."""
    tenant = request.GET.get("tenant", "")
    if tenant == "nameless":
        return TenantSecret(TENANT_SECRETS["acme"], tenant="")
    # ?only=1 gives the tenant's current secret alone, as after a rotation's grace period.
    secrets = TENANT_SECRETS.get(tenant, [])
    return TenantSecret(secrets[:1] if request.GET.get("only") else secrets, tenant=tenant)


@webhook_receiver("standard", secret=tenant_secret, source="tenants")
def tenants(request):
    record(request)
    return HttpResponse(status=204)


@webhook_receiver("github", secret=GITHUB_SECRET)
def github(request):
    record(request)
    return JsonResponse({"ok": True})


@webhook_receiver("standard", secret=SECRET, source="flaky")
def flaky(request):
    record(request)
    if len(calls) == 1:
        raise RuntimeError("database unavailable")
    return HttpResponse(status=204)


@webhook_receiver("github", secret=GITHUB_SECRET, source="flaky-github")
def flaky_github(request):
    record(request)
    if len(calls) == 1:
        raise RuntimeError("database unavailable")
    return JsonResponse({"ok": True})


@webhook_receiver("standard", secret=SECRET, source="later", run_async=True)
def later(request):
    record(request)
    if request.webhook.payload["data"].get("fail_times", 0) >= len(calls):
        raise RuntimeError("try again")
    return HttpResponse(status=204)


@webhook_receiver("standard", secret=SECRET, source="small", max_body_bytes=100)
def small(request):
    record(request)
    return HttpResponse(status=204)


def on_configured(request):
    record(request)
    return HttpResponse(status=204)


from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from django_hooks.inbound.drf import WebhookSignatureAuthentication  # noqa: E402


class GitHubAuthentication(WebhookSignatureAuthentication):
    provider = "github"
    secret = GITHUB_SECRET


class GitHubAPIHook(APIView):
    authentication_classes = [GitHubAuthentication]
    permission_classes = []

    def post(self, request):
        return Response({"id": request.auth.id, "type": request.auth.type})


def answers_500_once(request):
    record(request)
    return HttpResponse(status=500 if len(calls) == 1 else 204)
