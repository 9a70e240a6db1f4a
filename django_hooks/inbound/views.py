"""The view behind ``django_hooks.inbound.urls``: one receiver per ``INBOUND`` entry."""

from __future__ import annotations

import functools
import re
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import ConfigurationError, InvalidReceiver
from django_hooks.inbound.decorators import body_limit, webhook_receiver
from django_hooks.inbound.verifiers import get_verifier

__all__: list[str] = []

OPTIONS = {"provider", "secret", "handler", "tolerance", "run_async", "max_body_bytes"}
REQUIRED = ("provider", "secret", "handler")
#: What ``<slug:source>`` in the URLconf matches: another name could never be reached.
SOURCE_RE = re.compile(r"^[-a-zA-Z0-9_]+$")


def build_receiver(source: str) -> Any:
    """The receiver for ``INBOUND[source]``, built once per configuration."""
    config = hooks_settings.INBOUND[source]
    return _build(source, repr(sorted(config.items())))


@functools.cache
def _build(source: str, config_key: str) -> Any:
    config = hooks_settings.INBOUND[source]
    problems = receiver_problems(source, config)
    if problems:
        raise ConfigurationError(f"DJANGO_HOOKS['INBOUND'][{source!r}]: {'; '.join(problems)}.")
    handler = import_string(config["handler"])
    options = {k: v for k, v in config.items() if k not in REQUIRED}
    return webhook_receiver(config["provider"], secret=config["secret"], source=source, **options)(
        handler
    )


def inbound_setting_errors() -> list[str]:
    """What is wrong with the ``INBOUND`` setting, receiver by receiver (system check E009)."""
    inbound = hooks_settings.INBOUND or {}
    if not isinstance(inbound, dict):
        return ["DJANGO_HOOKS['INBOUND'] must be a dict: {source: {provider, secret, handler}}."]
    return [
        f"DJANGO_HOOKS['INBOUND'][{source!r}]: {'; '.join(problems)}."
        for source, config in inbound.items()
        if (problems := receiver_problems(source, config))
    ]


def receiver_problems(source: Any, config: Any) -> list[str]:
    """Why ``INBOUND[source]`` cannot receive, in words naming the option; [] when it can."""
    if not isinstance(source, str) or not SOURCE_RE.match(source):
        return ["the name is served at <prefix>/<name>/, so it must be letters, digits, - and _"]
    if not isinstance(config, dict):
        return [f"must be a dict with {', '.join(REQUIRED)}, not {type(config).__name__}"]
    problems = []
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        problems.append(f"{', '.join(missing)} missing")
    unknown = sorted(map(str, set(config) - OPTIONS))
    if unknown:
        problems.append(
            f"unknown option(s) {', '.join(unknown)} (the options are {', '.join(sorted(OPTIONS))})"
        )
    if "provider" in config:
        try:
            get_verifier(config["provider"], tolerance=config.get("tolerance", 300))
        except InvalidReceiver as exc:
            problems.append(str(exc))
    if "secret" in config and not _usable_secret(config["secret"]):
        problems.append("secret must be a non-empty string, a list of them, or a callable")
    if "handler" in config:
        problems.extend(_handler_problems(config["handler"]))
    if not isinstance(config.get("run_async", False), bool):
        problems.append("run_async must be True or False")
    limit = config.get("max_body_bytes")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append("max_body_bytes must be a positive number of bytes, or None")
    return problems


@sensitive_variables("secret")
def _usable_secret(secret: Any) -> bool:
    if callable(secret):
        return True
    secrets = [secret] if isinstance(secret, str) else secret
    return (
        isinstance(secrets, list | tuple)
        and bool(secrets)
        and all(isinstance(s, str) and s for s in secrets)
    )


def _handler_problems(path: Any) -> list[str]:
    if not isinstance(path, str):
        return ['handler must be the dotted path of a view, such as "app.hooks.on_github"']
    try:
        handler = import_string(path)
    except ImportError as exc:
        return [f"handler {path!r} cannot be imported ({exc})"]
    if not callable(handler):
        return [f"handler {path!r} is not callable"]
    return []


@login_not_required  # the receiver verifies a signature instead of a login or a CSRF token
@csrf_exempt
def configured_receiver(request: HttpRequest, source: str) -> HttpResponse:
    if source not in (hooks_settings.INBOUND or {}):
        return JsonResponse({"error": f"no webhook receiver named {source!r}"}, status=404)
    receiver = build_receiver(source)
    return receiver(request)


def _configured_body_limit(*args: Any, source: str = "", **kwargs: Any) -> int | None:
    """The body limit of ``INBOUND[source]`` (None when there is no such receiver)."""
    config = (hooks_settings.INBOUND or {}).get(source)
    if not isinstance(config, dict):
        return None
    return body_limit(config.get("max_body_bytes"))


# For ``inbound.asgi.ReceiverBodyLimit``: the limit depends on the URL's source.
configured_receiver.webhook_body_limit = _configured_body_limit  # type: ignore[attr-defined]
