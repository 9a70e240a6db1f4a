"""DRF authentication by webhook signature, for receivers written as ``APIView``s.

    class GitHubAuthentication(WebhookSignatureAuthentication):
        provider = "github"
        secret = settings.GITHUB_WEBHOOK_SECRET

    class GitHubHook(APIView):
        authentication_classes = [GitHubAuthentication]
        permission_classes = []      # the signature is the credential

``request.auth`` is the verified call (``.id .type .payload .timestamp``). Unlike
``@webhook_receiver``, nothing is stored or deduplicated here.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from django_hooks.core.errors import InvalidSecret, InvalidSignature
from django_hooks.inbound.decorators import SecretSource, resolve_secrets
from django_hooks.inbound.verifiers import Verifier, get_verifier

__all__ = ["WebhookSignatureAuthentication"]


class WebhookSignatureAuthentication(BaseAuthentication):
    provider: str | Verifier = "standard"
    secret: SecretSource | None = None
    tolerance: int = 300

    def get_secret(self, request: Request) -> SecretSource:
        if self.secret is None:
            raise InvalidSecret(f"{type(self).__name__}.secret is not set")
        return self.secret

    def authenticate(self, request: Request) -> tuple[Any, Any]:
        verifier = get_verifier(self.provider, tolerance=self.tolerance)
        try:
            secrets = resolve_secrets(self.get_secret(request), request._request)
            verified = verifier.verify(request._request.body, request.headers, secrets)
        except InvalidSignature as exc:
            raise AuthenticationFailed(exc.reason) from None
        return AnonymousUser(), verified

    def authenticate_header(self, request: Request) -> str:
        return 'Signature realm="webhooks"'  # makes DRF answer 401, not 403
