"""System checks. Ids are stable; a retired id stays listed here as a comment.

E001 QUEUE is not a key of RQ_QUEUES            E004 RETRY_SCHEDULE is not a list of seconds
E002 ENCRYPTION_KEYS unusable                   E005 DJANGO_HOOKS has unknown keys / wrong type
E003 ALLOWED_NETWORKS has an invalid entry      E006 a number setting is not a positive number
E007 SESSION does not give a requests.Session
E014 FAILURE_WARNINGS is not a list of seconds below DISABLE_AFTER
E015 OWNER_EMAIL_ADDRESS cannot be imported     E016 TELEMETRY is on, opentelemetry missing
W001 ALLOWED_NETWORKS set while DEBUG=False      W002 SESSION turns TLS verification off
W003 the API's URLs are included but rest_framework is not in INSTALLED_APPS
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLResolver, get_resolver
from django.utils.module_loading import import_string

from django_hooks.conf import hooks_settings
from django_hooks.core.urlguard import parse_networks
from django_hooks.internal import encryption
from django_hooks.outbound.client import configured_session

__all__: list[str] = []


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        hooks_settings.user_settings  # noqa: B018  (validates the keys)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Remove or rename the key.", id="django_hooks.E005")]

    errors: list[checks.CheckMessage] = []
    queues = getattr(settings, "RQ_QUEUES", None) or {}
    if hooks_settings.QUEUE not in queues:
        errors.append(
            checks.Error(
                f"DJANGO_HOOKS['QUEUE'] is {hooks_settings.QUEUE!r}, which is not in RQ_QUEUES.",
                hint="Add the queue to RQ_QUEUES or set DJANGO_HOOKS['QUEUE'] to one of "
                f"{sorted(queues) or 'its keys'}.",
                id="django_hooks.E001",
            )
        )

    try:
        encryption.configured_keys()
    except ImproperlyConfigured as exc:
        errors.append(
            checks.Error(
                str(exc),
                hint="Generate keys with cryptography.fernet.Fernet.generate_key().",
                id="django_hooks.E002",
            )
        )

    networks = hooks_settings.ALLOWED_NETWORKS
    try:
        if isinstance(networks, str):
            raise ValueError("must be a list of CIDR strings, not a string")
        parsed = parse_networks(networks)
    except ValueError as exc:
        errors.append(
            checks.Error(
                f"DJANGO_HOOKS['ALLOWED_NETWORKS'] is invalid: {exc}",
                hint='Use CIDR notation such as "10.0.0.0/8" or "127.0.0.1/32".',
                id="django_hooks.E003",
            )
        )
    else:
        if parsed and not settings.DEBUG:
            errors.append(
                checks.Warning(
                    "DJANGO_HOOKS['ALLOWED_NETWORKS'] lets webhooks target private networks "
                    f"({', '.join(map(str, parsed))}) in production.",
                    hint="Anyone who can create an endpoint can then reach those addresses. "
                    "Leave it empty unless every endpoint creator is trusted.",
                    id="django_hooks.W001",
                )
            )

    schedule = hooks_settings.RETRY_SCHEDULE
    if not isinstance(schedule, list | tuple) or not all(
        isinstance(s, int | float) and not isinstance(s, bool) and s >= 0 for s in schedule
    ):
        errors.append(
            checks.Error(
                "DJANGO_HOOKS['RETRY_SCHEDULE'] must be a list of non-negative seconds.",
                hint="For example [5, 300, 1800, 7200].",
                id="django_hooks.E004",
            )
        )

    errors.extend(_check_session())
    errors.extend(_check_warnings_and_telemetry())

    positive = ("TIMEOUT", "DISABLE_AFTER", "MAX_PAYLOAD_BYTES", "BATCH_SIZE", "CONCURRENCY",
                "ENDPOINT_CONCURRENCY", "LEASE", "RESPONSE_READ_LIMIT",
                "RESPONSE_STORE_LIMIT")  # fmt: skip
    for name in positive:
        value = getattr(hooks_settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(
                checks.Error(
                    f"DJANGO_HOOKS[{name!r}] must be a positive number, not {value!r}.",
                    id="django_hooks.E006",
                )
            )
    return errors


def _check_warnings_and_telemetry() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    warnings = hooks_settings.FAILURE_WARNINGS
    limit = hooks_settings.DISABLE_AFTER
    if not isinstance(warnings, list | tuple) or not all(
        isinstance(t, int | float) and not isinstance(t, bool) and 0 < t < limit for t in warnings
    ):
        errors.append(
            checks.Error(
                f"DJANGO_HOOKS['FAILURE_WARNINGS'] must be a list of seconds, each above 0 and "
                f"below DISABLE_AFTER ({limit!r}); got {warnings!r}.",
                hint="For example [3600, 86400] (1 hour and 1 day), or [] for no warnings.",
                id="django_hooks.E014",
            )
        )
    finder = hooks_settings.OWNER_EMAIL_ADDRESS
    if finder is not None:
        try:
            found = import_string(finder) if isinstance(finder, str) else finder
        except ImportError as exc:
            found, problem = None, str(exc)
        else:
            problem = "" if callable(found) else f"{finder!r} is not callable"
        if problem:
            errors.append(
                checks.Error(
                    f"DJANGO_HOOKS['OWNER_EMAIL_ADDRESS']: {problem}.",
                    hint="Give the dotted path of a function (endpoint) -> address, list of "
                    "addresses or None.",
                    id="django_hooks.E015",
                )
            )
    if hooks_settings.TELEMETRY and importlib.util.find_spec("opentelemetry") is None:
        errors.append(
            checks.Error(
                "DJANGO_HOOKS['TELEMETRY'] is on, but opentelemetry is not installed.",
                hint='pip install "django-hooks[otel]" (and opentelemetry-sdk with an exporter).',
                id="django_hooks.E016",
            )
        )
    return errors


def _check_session() -> list[checks.CheckMessage]:
    try:
        session = configured_session()
    except Exception as exc:  # whatever the user's factory raised is the message
        return [
            checks.Error(
                str(exc)
                if isinstance(exc, ImproperlyConfigured)
                else f"DJANGO_HOOKS['SESSION'] raised {type(exc).__name__}: {exc}",
                hint="Set it to the dotted path of a function that returns a requests.Session, "
                'e.g. "myproject.webhooks.session", or to None.',
                id="django_hooks.E007",
            )
        ]
    if session is None:
        return []
    try:
        if session.verify is False:
            return [
                checks.Warning(
                    "DJANGO_HOOKS['SESSION'] returns a session with verify=False: webhooks "
                    "are sent without checking receivers' TLS certificates.",
                    hint="Set verify to a CA bundle path instead if receivers use a private CA.",
                    id="django_hooks.W002",
                )
            ]
        return []
    finally:
        session.close()


API_URLCONF = "django_hooks.api.urls"


@checks.register(checks.Tags.urls)
def check_api_prerequisites(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if apps.is_installed("rest_framework") or not includes_api_urls():
        return []
    return [
        checks.Warning(
            f"{API_URLCONF} is included in the URLconf, but 'rest_framework' is not in "
            "INSTALLED_APPS.",
            hint='Add "rest_framework" to INSTALLED_APPS: without it, opening the API in a '
            "browser (DRF's browsable API) fails with TemplateDoesNotExist: "
            "rest_framework/api.html.",
            id="django_hooks.W003",
        )
    ]


def includes_api_urls() -> bool:
    try:
        pending = list(get_resolver().url_patterns)
    except Exception:  # Django's own URL checks report a URLconf that does not load
        return False
    while pending:
        pattern = pending.pop()
        if isinstance(pattern, URLResolver):
            module = getattr(pattern.urlconf_module, "__name__", pattern.urlconf_name)
            if module == API_URLCONF:
                return True
            pending.extend(pattern.url_patterns)
    return False
