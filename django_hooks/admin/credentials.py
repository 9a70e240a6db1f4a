"""The endpoint form's "Receiver credentials" fieldset: pick a kind, fill in its parts.

Secret parts are write-only: never rendered back, and left blank they keep the stored value
(as long as the kind stays the same). Only the kind and non-secret parts are ever shown.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from django_hooks.core import credentials
from django_hooks.exceptions import InvalidCredentials
from django_hooks.models import Endpoint

__all__: list[str] = []

#: Form field of each credential part (``credentials_<part>``), and which parts are secret.
PARTS = (
    "username",
    "password",
    "token",
    "token_url",
    "client_id",
    "client_secret",
    "scope",
    "certificate",
    "private_key",
)
SECRET_PARTS = frozenset({"password", "token", "client_secret", "private_key"})
FIELDS = ["credentials_kind", *(f"credentials_{part}" for part in PARTS)]
KEEP = "Leave blank to keep the stored value."


def _secret(label: str, *, multiline: bool = False) -> forms.CharField:
    widget: forms.Widget = (
        forms.Textarea(attrs={"rows": 4, "autocomplete": "off"})
        if multiline
        else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    )
    return forms.CharField(label=label, required=False, strip=False, widget=widget, help_text=KEEP)


class EndpointCredentialsForm(forms.ModelForm):
    credentials_kind = forms.ChoiceField(
        label="kind",
        required=False,
        choices=[
            ("", "none"),
            ("basic", "HTTP Basic"),
            ("bearer", "Bearer token"),
            ("oauth2", "OAuth2 client credentials"),
            ("mtls", "TLS client certificate"),
        ],
    )
    credentials_username = forms.CharField(label="username (Basic)", required=False)
    credentials_password = _secret("password (Basic)")
    credentials_token = _secret("token (Bearer)")
    credentials_token_url = forms.CharField(label="token URL (OAuth2)", required=False)
    credentials_client_id = forms.CharField(label="client id (OAuth2)", required=False)
    credentials_client_secret = _secret("client secret (OAuth2)")
    credentials_scope = forms.CharField(label="scope (OAuth2)", required=False)
    credentials_certificate = forms.CharField(
        label="certificate (mTLS, PEM)", required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    credentials_private_key = _secret("private key (mTLS, PEM, unencrypted)", multiline=True)

    class Meta:
        model = Endpoint
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        public = self.instance.auth_public or {}
        if "credentials_kind" in self.fields:
            self.fields["credentials_kind"].initial = self.instance.auth_kind
            for part in ("username", "token_url", "client_id", "scope"):
                self.fields[f"credentials_{part}"].initial = public.get(part, "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "credentials_kind" not in self.fields:
            return data
        kind = data.get("credentials_kind") or ""
        if not kind:
            self.instance.auth = None
            return data
        parts = {
            part: data.get(f"credentials_{part}") or "" for part in credentials.AUTH_KINDS[kind]
        }
        if kind == self.instance.auth_kind and any(
            not parts[part] for part in SECRET_PARTS & set(parts)
        ):
            stored = self.instance.auth
            for part in SECRET_PARTS & set(parts):
                parts[part] = parts[part] or getattr(stored, part)
        if kind == "mtls" and not parts["certificate"] and kind == self.instance.auth_kind:
            parts["certificate"] = getattr(self.instance.auth, "certificate", "")
        try:
            self.instance.auth = credentials.from_dict({"kind": kind, **parts})
        except InvalidCredentials as exc:
            self.add_error("credentials_kind", str(exc))
        return data


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
