"""System checks. Ids are stable; a retired id stays listed here as a comment.

E001 QUEUE is not a key of RQ_QUEUES            E008 django_rq is not in INSTALLED_APPS
E002 ENCRYPTION_KEYS unusable                   E009 an INBOUND receiver cannot work
E003 ALLOWED_NETWORKS has an invalid entry      E010 API_OWNER is not a callable
E004 RETRY_SCHEDULE is not a list of seconds    E011 a MODEL_EVENTS entry cannot be connected
E005 DJANGO_HOOKS has unknown keys / wrong type E012 EVENT_TYPES is malformed
E006 a number setting is not a positive number  E013 PROXY is not a usable proxy URL
E007 SESSION does not give a requests.Session  E014 VALIDATE_EVENT_DATA without jsonschema
E015 FAILURE_WARNINGS is not a list of seconds below DISABLE_AFTER
E016 OWNER_EMAIL_ADDRESS cannot be imported     E017 TELEMETRY is on, opentelemetry missing
W001 ALLOWED_NETWORKS set while DEBUG=False (tag: security)
W002 SESSION turns TLS verification off (tag: security)
W003 the API's URLs are included but rest_framework is not in INSTALLED_APPS
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import requests
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLResolver, get_resolver
from django.utils.module_loading import import_string
from requests.utils import prepend_scheme_if_needed
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from django_hooks.conf import hooks_settings
from django_hooks.core.urlguard import Network, parse_networks
from django_hooks.event_types import declared_event_types
from django_hooks.exceptions import ConfigurationError
from django_hooks.inbound.views import inbound_setting_errors
from django_hooks.internal import encryption
from django_hooks.outbound.client import configured_session
from django_hooks.outbound.dispatch import model_events_setting_errors

__all__: list[str] = []

SETTINGS_REFERENCE = "every key is described on the Settings page of the django-hooks docs"


@checks.register(checks.Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        hooks_settings.user_settings  # noqa: B018  (validates the keys)
    except ConfigurationError as exc:
        hint = f"Remove or rename the key: {SETTINGS_REFERENCE}."
        return [checks.Error(str(exc), hint=hint, id="django_hooks.E005")]

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
    if not apps.is_installed("django_rq"):
        errors.append(
            checks.Error(
                "'django_rq' is not in INSTALLED_APPS.",
                hint='Add "django_rq" to INSTALLED_APPS, before "django_hooks": deliveries and '
                "inbound handlers run on django-rq, whose rqworker command and queue pages "
                "come with the app.",
                id="django_hooks.E008",
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

    _, problem = allowed_networks()
    if problem:
        errors.append(
            checks.Error(
                f"DJANGO_HOOKS['ALLOWED_NETWORKS'] is invalid: {problem}",
                hint='Use CIDR notation such as "10.0.0.0/8" or "127.0.0.1/32".',
                id="django_hooks.E003",
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

    session = _configured_session(errors)
    if session is not None:
        session.close()
    errors.extend(_check_warnings_and_telemetry())

    positive = (
        "TIMEOUT",
        "DISABLE_AFTER",
        "MAX_PAYLOAD_BYTES",
        "BATCH_SIZE",
        "CONCURRENCY",
        "ENDPOINT_CONCURRENCY",
        "LEASE",
        "RESPONSE_READ_LIMIT",
        "RESPONSE_STORE_LIMIT",
        "FEED_CONNECTIONS_PER_OWNER",
    )
    for name in positive:
        value = getattr(hooks_settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(
                checks.Error(
                    f"DJANGO_HOOKS[{name!r}] must be a positive number, not {value!r}.",
                    id="django_hooks.E006",
                )
            )

    if hooks_settings.VALIDATE_EVENT_DATA:
        try:
            import jsonschema  # noqa: F401, PLC0415  (is the optional jsonschema extra installed?)
        except ImportError:
            errors.append(
                checks.Error(
                    "DJANGO_HOOKS['VALIDATE_EVENT_DATA'] is on, but jsonschema is not installed: "
                    "send_event would raise MissingDependency.",
                    hint='pip install "django-hooks[jsonschema]", or turn the setting off.',
                    id="django_hooks.E014",
                )
            )

    errors.extend(_check_inbound())
    errors.extend(_check_api_owner())
    errors.extend(_check_model_events())
    errors.extend(_check_event_types())
    errors.extend(_check_proxy())
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
                id="django_hooks.E015",
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
                    id="django_hooks.E016",
                )
            )
    if hooks_settings.TELEMETRY and importlib.util.find_spec("opentelemetry") is None:
        errors.append(
            checks.Error(
                "DJANGO_HOOKS['TELEMETRY'] is on, but opentelemetry is not installed.",
                hint='pip install "django-hooks[otel]" (and opentelemetry-sdk with an exporter).',
                id="django_hooks.E017",
            )
        )
    return errors


@checks.register(checks.Tags.security)
def check_security(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The warnings ``check --deploy`` and ``check --tag security`` show."""
    try:
        hooks_settings.user_settings  # noqa: B018  (E005 reports settings that are unusable)
    except ConfigurationError:
        return []
    warnings: list[checks.CheckMessage] = []
    networks, _ = allowed_networks()
    if networks and not settings.DEBUG:
        warnings.append(
            checks.Warning(
                "DJANGO_HOOKS['ALLOWED_NETWORKS'] lets webhooks target private networks "
                f"({', '.join(map(str, networks))}) in production.",
                hint="Anyone who can create an endpoint can then reach those addresses. "
                "Leave it empty unless every endpoint creator is trusted.",
                id="django_hooks.W001",
            )
        )
    session = _configured_session([])  # E007 reports a setting that gives no session
    if session is not None:
        try:
            if session.verify is False:
                warnings.append(
                    checks.Warning(
                        "DJANGO_HOOKS['SESSION'] returns a session with verify=False: webhooks "
                        "are sent without checking receivers' TLS certificates.",
                        hint="Set verify to a CA bundle path instead if receivers use a "
                        "private CA.",
                        id="django_hooks.W002",
                    )
                )
        finally:
            session.close()
    return warnings


def allowed_networks() -> tuple[tuple[Network, ...], str | None]:
    """``ALLOWED_NETWORKS`` parsed, and what is wrong with it (None when nothing is)."""
    value = hooks_settings.ALLOWED_NETWORKS
    if isinstance(value, str):
        return (), "must be a list of CIDR strings, not a string"
    try:
        return parse_networks(value), None
    except (TypeError, ValueError) as exc:
        return (), str(exc)


def _configured_session(errors: list[checks.CheckMessage]) -> requests.Session | None:
    """The ``SESSION`` setting's session, or None; appends E007 when it gives none."""
    try:
        return configured_session()
    except Exception as exc:  # whatever the user's factory raised is the message
        errors.append(
            checks.Error(
                str(exc)
                if isinstance(exc, ImproperlyConfigured)
                else f"DJANGO_HOOKS['SESSION'] raised {type(exc).__name__}: {exc}",
                hint="Set it to the dotted path of a function that returns a requests.Session, "
                'e.g. "myproject.webhooks.session", or to None.',
                id="django_hooks.E007",
            )
        )
        return None


def _reported(find: Callable[[], list[str]], hint: str, id: str) -> list[checks.CheckMessage]:
    return [checks.Error(problem, hint=hint, id=id) for problem in find()]


def _check_inbound() -> list[checks.CheckMessage]:

    return _reported(
        inbound_setting_errors,
        'Each receiver is {"provider": ..., "secret": ..., "handler": "app.hooks.view"}, with '
        "tolerance, run_async and max_body_bytes optional.",
        "django_hooks.E009",
    )


def _check_api_owner() -> list[checks.CheckMessage]:
    from django_hooks.api.permissions import owner_resolver  # noqa: PLC0415  (DRF is optional)

    try:
        owner_resolver()
    except ConfigurationError as exc:
        return [
            checks.Error(
                str(exc),
                hint="Set it to the dotted path of a function taking the request and returning "
                'its owner or None, e.g. "myproject.webhooks.request_org".',
                id="django_hooks.E010",
            )
        ]
    return []


def _check_model_events() -> list[checks.CheckMessage]:
    return _reported(
        model_events_setting_errors,
        'Each entry is "app_label.Model": {"prefix": ..., "serializer": ..., "owner": ..., '
        '"actions": [...]}, as django_hooks.model_events() takes them. Until it is fixed, '
        "the entry sends no events.",
        "django_hooks.E011",
    )


def _check_event_types() -> list[checks.CheckMessage]:
    try:
        declared_event_types()
    except ConfigurationError as exc:
        return [
            checks.Error(
                str(exc),
                hint='For example {"order.paid": {"description": "An order was paid.", '
                '"schema": {...}, "example": {...}}}, or a list of names.',
                id="django_hooks.E012",
            )
        ]
    return []


PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def proxy_problem(value: Any) -> str | None:
    """Why ``PROXY`` cannot carry webhooks (never quoting it: it may hold a password)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be one proxy URL (a string), not {type(value).__name__}"
    try:
        url = parse_url(prepend_scheme_if_needed(value.strip(), "http"))
    except (LocationParseError, ValueError):
        return "is not a URL"
    scheme = (url.scheme or "").lower()
    if scheme not in PROXY_SCHEMES:
        return f"must start with one of {', '.join(s + '://' for s in PROXY_SCHEMES)}"
    if not url.host:
        return "names no host"
    if scheme.startswith("socks"):
        try:
            import urllib3.contrib.socks  # noqa: F401, PLC0415  (is the optional PySocks there?)
        except ImportError:
            return 'is a SOCKS proxy, which needs PySocks: pip install "requests[socks]"'
    return None


def _check_proxy() -> list[checks.CheckMessage]:
    problem = proxy_problem(hooks_settings.PROXY)
    if problem is None:
        return []
    return [
        checks.Error(
            f"DJANGO_HOOKS['PROXY'] {problem}.",
            hint='For example "http://egress.internal:3128"; per-scheme proxies go on the '
            "session of the SESSION setting.",
            id="django_hooks.E013",
        )
    ]


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
