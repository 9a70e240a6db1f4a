"""Who the API serves: the owner a request acts for (``API_OWNER``), required on every route."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from django_hooks.conf import hooks_settings
from django_hooks.exceptions import ConfigurationError

__all__ = ["HasOwner", "authenticated_user", "request_owner"]

_UNSET = object()


def authenticated_user(request: Request) -> models.Model | None:
    """The default ``API_OWNER``: the authenticated user, else None (refused)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return user


def owner_resolver() -> Any:
    value = hooks_settings.API_OWNER
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ConfigurationError(f"DJANGO_HOOKS['API_OWNER']: {exc}") from None
    if not callable(value):
        raise ConfigurationError("DJANGO_HOOKS['API_OWNER'] must be a callable or a dotted path.")
    return value


def request_owner(request: Request) -> models.Model | None:
    """The owner the request acts for, resolved once per request."""
    owner = getattr(request, "_hooks_owner", _UNSET)
    if owner is _UNSET:
        owner = owner_resolver()(request)
        if owner is not None and getattr(owner, "pk", None) is None:
            owner = None  # an unsaved object (AnonymousUser has pk None) owns nothing
        request._hooks_owner = owner
    return owner  # type: ignore[return-value]


class HasOwner(BasePermission):
    """Added after the project's DRF permission classes: a request with no owner is refused."""

    # Seen only by authenticated requests whose owner resolver returned None.
    message = "This account cannot manage webhooks."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request_owner(request) is not None
