"""Who a portal page serves, and how they got in.

Two ways in. Behind the host's login, ``API_OWNER`` resolves the owner exactly as for the REST
API. Through a signed link (``signed_link``), the portal opens its own session: a signed cookie
scoped to the portal's path that names one owner, expires, and logs nobody into the host site.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from django_hooks.api.permissions import request_owner
from django_hooks.conf import hooks_settings
from django_hooks.exceptions import InvalidArgument, UnsavedOwner

__all__: list[str] = []

LINK_SALT = "django_hooks.portal.link"
SESSION_SALT = "django_hooks.portal.session"
COOKIE_NAME = "django_hooks_portal"
CSRF_FIELD = "csrfmiddlewaretoken"
#: The longest a signed link may be valid: a link is a bearer credential.
MAX_LINK_LIFETIME = 7 * 24 * 3600


def portal_root() -> str:
    return reverse("django_hooks_portal:endpoints")


def signed_link(owner: models.Model, expires_in: float | dt.timedelta = 3600) -> str:
    """A URL path that opens the portal for ``owner`` alone, valid for ``expires_in`` seconds."""
    if isinstance(expires_in, dt.timedelta):
        expires_in = expires_in.total_seconds()
    if not 0 < expires_in <= MAX_LINK_LIFETIME:
        raise InvalidArgument(
            f"expires_in must be more than 0 and at most {MAX_LINK_LIFETIME} seconds (7 days); "
            f"got {expires_in!r}."
        )
    if getattr(owner, "pk", None) is None:
        raise UnsavedOwner("owner must be a saved model instance.")
    content_type = ContentType.objects.get_for_model(owner)
    token = signing.dumps(
        {"o": [content_type.pk, str(owner.pk)], "e": int(time.time() + expires_in)},
        salt=LINK_SALT,
    )
    return reverse("django_hooks_portal:enter", args=[token])


@dataclass
class Access:
    """The owner a portal request acts for, and whether it came through a signed link."""

    owner: models.Model
    via_link: bool
    csrf_token: str
    expires_at: int | None = None


def load_owner(content_type_id: int, pk: str) -> models.Model | None:
    try:
        content_type = ContentType.objects.get_for_id(content_type_id)
        model = content_type.model_class()
        if model is None:
            return None
        return model._default_manager.filter(pk=pk).first()
    except (ContentType.DoesNotExist, ValueError, TypeError):
        return None


def read_link(token: str) -> tuple[int, str, int] | None:
    """The owner and expiry a link token names, or None when forged, malformed or expired."""
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=MAX_LINK_LIFETIME)
        (content_type_id, pk), expires = payload["o"], int(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if expires <= time.time():
        return None
    return int(content_type_id), str(pk), expires


def read_session(request: HttpRequest) -> dict[str, Any] | None:
    value = request.COOKIES.get(COOKIE_NAME)
    if not value:
        return None
    try:
        payload = signing.loads(value, salt=SESSION_SALT)
        if int(payload["e"]) <= time.time() or not isinstance(payload.get("c"), str):
            return None
        payload["o"] = (int(payload["o"][0]), str(payload["o"][1]))
    except (signing.BadSignature, KeyError, TypeError, ValueError, IndexError):
        return None
    return dict(payload)


def start_session(
    request: HttpRequest, response: HttpResponse, content_type_id: int, pk: str
) -> None:
    """Open the portal's own session on ``response``: a signed, path-scoped, HttpOnly cookie."""
    age = int(hooks_settings.PORTAL_SESSION_AGE)
    value = signing.dumps(
        {"o": [content_type_id, pk], "e": int(time.time()) + age, "c": secrets.token_urlsafe(32)},
        salt=SESSION_SALT,
    )
    # Embedded on another site, the cookie is third-party: only SameSite=None (which browsers
    # accept over https alone) lets the frame send it back.
    secure = request.is_secure()
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=age,
        path=portal_root(),
        secure=secure,
        httponly=True,
        samesite="None" if secure else "Lax",
    )


def resolve(request: HttpRequest) -> Access | None:
    """The request's ``Access``: a live portal session first, else the host's ``API_OWNER``."""
    session = read_session(request)
    if session is not None:
        owner = load_owner(*session["o"])
        if owner is not None:
            return Access(owner, True, session["c"], session["e"])
    owner = request_owner(request)
    if owner is None:
        return None
    return Access(owner, False, get_token(request))


def frame_headers(response: HttpResponse, access: Access | None) -> HttpResponse:
    """Pages opened by a link may be framed by ``PORTAL_FRAME_ANCESTORS``; others by the site."""
    ancestors = ["'self'"]
    if access is not None and access.via_link:
        ancestors += list(hooks_settings.PORTAL_FRAME_ANCESTORS)
        if len(ancestors) > 1:
            # X-Frame-Options cannot list origins; the CSP below is what browsers obey.
            response.xframe_options_exempt = True
    response.setdefault("Content-Security-Policy", f"frame-ancestors {' '.join(ancestors)}")
    response.setdefault("Referrer-Policy", "same-origin")
    response.setdefault("X-Content-Type-Options", "nosniff")
    return response


def refused(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    response = TemplateResponse(
        request,
        "django_hooks/portal/refused.html",
        {"title": title, "message": message, "portal": None},
        status=status,
    )
    return response


def csrf_failure(request: HttpRequest, access: Access) -> HttpResponse | None:
    """None if the POST carries the right token; the refusal page otherwise."""
    if access.via_link:
        sent = request.POST.get(CSRF_FIELD, "")
        if sent and constant_time_compare(sent, access.csrf_token):
            return None
        return refused(
            request,
            "Form expired",
            "This form was not sent from this portal session. Go back, reload the "
            "page and try again.",
            403,
        )
    # Behind the site's login: Django's own check, as every other form of the site.
    rejected = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {})  # type: ignore[arg-type]
    return rejected


def portal_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the owner (or refuse), check CSRF on every POST, and set the framing headers.

    The view is exempt from ``CsrfViewMiddleware`` only so that the check can follow the way
    in: Django's token behind the login, the portal session's own token through a link (a
    cross-site frame cannot send the site's Lax CSRF cookie).
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        access = resolve(request)
        if access is None:
            if request.COOKIES.get(COOKIE_NAME):
                response = refused(
                    request,
                    "Link expired",
                    "This webhook portal session has ended. Open the portal again "
                    "from the page that linked you here.",
                    403,
                )
            elif getattr(request, "user", None) is not None and request.user.is_authenticated:
                response = refused(
                    request, "Not available", "This account cannot manage webhooks.", 403
                )
            else:
                response = redirect_to_login(request.get_full_path())
            return frame_headers(response, None)
        request.portal = access  # type: ignore[attr-defined]
        if request.method == "POST":
            rejected = csrf_failure(request, access)
            if rejected is not None:
                return frame_headers(rejected, access)
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            # The same page for another owner's object as for a missing one.
            response = refused(request, "Not found", "There is nothing here.", 404)
        return frame_headers(response, access)

    wrapper = csrf_exempt(wrapper)
    # Read by the security tests: exempt from the middleware, checked by this wrapper instead.
    wrapper.csrf_checked_by_portal = True  # type: ignore[attr-defined]
    return login_not_required(wrapper)
