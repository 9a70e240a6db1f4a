"""The endpoint form's "Receiver credentials" fieldset: pick a kind, fill in its parts.

The form is ``internal.writeonly``'s, shared with the portal: secret parts are write-only (never
rendered back; left blank they keep the stored value while the kind stays the same), and only
the kind and non-secret parts are ever shown. This module places it in the admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from django_hooks.internal.writeonly import FIELDS, EndpointCredentialsForm
from django_hooks.models import Endpoint

__all__: list[str] = []


class CredentialsFieldset:
    """For the endpoint ModelAdmin: the credentials fieldset after the admin's own fields, and
    for users who may only view, the kind and non-secret parts as text."""

    form: Any = EndpointCredentialsForm

    def get_fieldsets(self, request: HttpRequest, obj: Endpoint | None = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))  # type: ignore[misc]
        if obj is not None and not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            shown: list[str] = ["credentials_summary"]
        else:
            shown = FIELDS
        return [*fieldsets, ("Receiver credentials", {"fields": shown, "classes": ["collapse"]})]

    def get_readonly_fields(self, request: HttpRequest, obj: Endpoint | None = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if obj is not None and not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            fields.append("credentials_summary")
        return fields

    @admin.display(description="credentials")
    def credentials_summary(self, endpoint: Endpoint) -> str:
        public = dict(endpoint.auth_public or {})
        kind = public.pop("kind", "")
        if not kind:
            return "none"
        return ", ".join([kind, *(f"{name}: {value}" for name, value in public.items() if value)])
