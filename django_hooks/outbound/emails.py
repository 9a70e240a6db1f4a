"""Emails to an endpoint's owner (``OWNER_EMAILS``): at each ``FAILURE_WARNINGS`` threshold and
when the endpoint is disabled for failing.

The signals decide *whether*: ``endpoint_failing`` is sent once per threshold and failing spell
(a conditional UPDATE of ``Endpoint.failure_warnings_sent``), ``endpoint_disabled`` once per
disable (a conditional UPDATE of ``disabled_at``), both after commit, so neither a restart nor a
second worker sends an email twice. The email itself is a job on ``QUEUE``: SMTP never holds up
the engine's results write. Templates (``django_hooks/email/<kind>_subject.txt``, ``.txt`` and
``.html``) can be overridden by the project's own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

from django_hooks import signals
from django_hooks.conf import hooks_settings
from django_hooks.exceptions import InvalidArgument, QueueUnavailable
from django_hooks.internal import queue as queues
from django_hooks.models import Endpoint
from django_hooks.outbound.delivery import describe_seconds

__all__ = ["owner_email_address"]

logger = logging.getLogger("django_hooks")

#: The job, by path: the worker imports it.
EMAIL_JOB = "django_hooks.outbound.tasks.email_owner"
FAILING = "endpoint_failing"
DISABLED = "endpoint_disabled"
KINDS = (FAILING, DISABLED)


def owner_email_address(endpoint: Endpoint) -> str | None:
    """The default ``OWNER_EMAIL_ADDRESS``: the owner's email field (a user's ``email``)."""
    owner = endpoint.owner
    if owner is None:
        return None
    field = getattr(owner, "get_email_field_name", None)
    address = getattr(owner, field() if callable(field) else "email", None)
    return address if isinstance(address, str) and address else None


def addresses_of(endpoint: Endpoint) -> list[str]:
    find = hooks_settings.OWNER_EMAIL_ADDRESS or owner_email_address
    if isinstance(find, str):
        find = import_string(find)
    found = find(endpoint)
    if not found:
        return []
    return [found] if isinstance(found, str) else [a for a in found if a]


def shown_url(url: str) -> str:
    """The endpoint's URL as an email shows it: no credentials, no query, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# -- the receivers (after commit, in whichever process recorded the change) -------------------


def on_endpoint_failing(
    sender: Any,
    *,
    endpoint: Endpoint,
    failing_since: dt.datetime,
    threshold: float,
    disable_at: dt.datetime,
    **kwargs: Any,
) -> None:
    if hooks_settings.OWNER_EMAILS:
        enqueue(
            endpoint,
            FAILING,
            {"failing_since": failing_since, "threshold": threshold, "disable_at": disable_at},
        )


def on_endpoint_disabled(sender: Any, *, endpoint: Endpoint, reason: str, **kwargs: Any) -> None:
    if hooks_settings.OWNER_EMAILS:
        enqueue(endpoint, DISABLED, {"reason": reason, "disabled_at": endpoint.disabled_at})


def enqueue(endpoint: Endpoint, kind: str, details: dict[str, Any]) -> None:
    try:
        queues.enqueue(
            hooks_settings.QUEUE,
            EMAIL_JOB,
            [(endpoint.pk, kind, details)],
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
        )
    except QueueUnavailable:
        logger.error(
            "Could not queue the %s email to the owner of endpoint %s",
            kind,
            endpoint.pk,
            exc_info=True,
        )


def connect_owner_emails() -> None:
    """Connected in ``apps.ready``; each receiver checks ``OWNER_EMAILS`` when it runs."""
    signals.endpoint_failing.connect(
        on_endpoint_failing, dispatch_uid="django_hooks.emails.failing"
    )
    signals.endpoint_disabled.connect(
        on_endpoint_disabled, dispatch_uid="django_hooks.emails.disabled"
    )


# -- the job ------------------------------------------------------------------------------------


def send_owner_email(endpoint_id: int, kind: str, details: dict[str, Any]) -> int:
    """Render and send one email to the endpoint's owner; return how many were sent (0: the
    endpoint is gone, or its owner has no address)."""
    if kind not in KINDS:
        raise InvalidArgument(f"Unknown owner email {kind!r}")
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return 0
    recipients = addresses_of(endpoint)
    if not recipients:
        logger.info("No email address for the owner of endpoint %s: %s not sent", endpoint_id, kind)
        return 0
    threshold = details.get("threshold")
    context = {
        "endpoint": endpoint,
        "endpoint_url": shown_url(endpoint.url),
        "failing_for": describe_seconds(threshold) if threshold else "",
        **details,
    }
    subject = " ".join(render_to_string(f"django_hooks/email/{kind}_subject.txt", context).split())
    text = render_to_string(f"django_hooks/email/{kind}.txt", context)
    message = EmailMultiAlternatives(subject, text, to=recipients)
    html: str = ""
    with contextlib.suppress(TemplateDoesNotExist):
        html = render_to_string(f"django_hooks/email/{kind}.html", context)
    if html.strip():  # an empty override of the .html template sends text alone
        message.attach_alternative(html, "text/html")
    return message.send()
