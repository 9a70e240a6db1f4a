"""The view behind ``django_hooks.inbound.urls``: one receiver per ``INBOUND`` entry."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import ConfigurationError
from django_hooks.inbound.decorators import webhook_receiver

OPTIONS = {"provider", "secret", "handler", "tolerance", "run_async", "max_body_bytes"}


def build_receiver(source: str) -> Any:
    """The receiver for ``INBOUND[source]``, built once per configuration."""
    config = hooks_settings.INBOUND[source]
    return _build(source, repr(sorted(config.items())))


@functools.cache
def _build(source: str, config_key: str) -> Any:
    config = hooks_settings.INBOUND[source]
    unknown = set(config) - OPTIONS
    if unknown or not {"provider", "secret", "handler"} <= set(config):
        raise ConfigurationError(
            f"DJANGO_HOOKS['INBOUND'][{source!r}] needs provider, secret and handler "
            f"(and may have {', '.join(sorted(OPTIONS))}); unknown: {', '.join(sorted(unknown))}"
        )
    handler = import_string(config["handler"])
    options = {k: v for k, v in config.items() if k not in ("provider", "secret", "handler")}
    return webhook_receiver(config["provider"], secret=config["secret"], source=source, **options)(
        handler
    )


@login_not_required  # the receiver verifies a signature instead of a login or a CSRF token
@csrf_exempt
def configured_receiver(request: HttpRequest, source: str) -> HttpResponse:
    if source not in (hooks_settings.INBOUND or {}):
        return JsonResponse({"error": f"no webhook receiver named {source!r}"}, status=404)
    receiver = build_receiver(source)
    return receiver(request)  # type: ignore[no-any-return]
