"""Write-only endpoint values, as the admin, the portal and the REST API take them: receiver
credentials and custom header values. What was stored is never shown again; leaving it blank (a
secret part while the kind stays the same) or sending ``[hidden]`` back (a header value) keeps it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from django_hooks.core import credentials
from django_hooks.exceptions import EndpointValidationError, InvalidCredentials
from django_hooks.models import Endpoint

__all__: list[str] = []

#: What is shown for a custom header's value; sent back unchanged, it keeps the stored value.
HIDDEN_VALUE = "[hidden]"

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
KIND_CHOICES = [
    ("", "none"),
    ("basic", "HTTP Basic"),
    ("bearer", "Bearer token"),
    ("oauth2", "OAuth2 client credentials"),
    ("mtls", "TLS client certificate"),
]


def keep_hidden_headers(submitted: dict[str, str], stored: Any) -> dict[str, str]:
    """``submitted`` with each ``[hidden]`` value replaced by the stored one (names compared
    case-insensitively); raises ``EndpointValidationError`` naming a header with no stored value."""
    stored = {name.lower(): value for name, value in (stored or {}).items()}
    kept = {}
    for name, value in submitted.items():
        if value == HIDDEN_VALUE:
            if name.lower() not in stored:
                raise EndpointValidationError(
                    {
                        "headers": [
                            f"{name!r}: {HIDDEN_VALUE!r} keeps a stored value, and this endpoint "
                            "has none for this header."
                        ]
                    }
                )
            value = stored[name.lower()]
        kept[name] = value
    return kept


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted with an error."""

    def format_value(self, value: Any) -> None:
        return None


class WriteOnlyInput(forms.PasswordInput):
    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"autocomplete": "new-password", **(attrs or {})}, render_value=False)


def secret_field(label: str, *, multiline: bool = False) -> forms.CharField:
    widget: forms.Widget = (
        WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"})
        if multiline
        else WriteOnlyInput()
    )
    return forms.CharField(label=label, required=False, strip=False, widget=widget, help_text=KEEP)


class EndpointCredentialsForm(forms.ModelForm):
    """Pick a kind, fill in its parts; sets ``instance.auth`` when valid (saving is the
    caller's). The model's own checks on the credential (the SSRF guard on an OAuth2 token
    URL) are shown on the kind."""

    credentials_kind = forms.ChoiceField(label="kind", required=False, choices=KIND_CHOICES)
    credentials_username = forms.CharField(label="username (Basic)", required=False)
    credentials_password = secret_field("password (Basic)")
    credentials_token = secret_field("token (Bearer)")
    credentials_token_url = forms.CharField(label="token URL (OAuth2)", required=False)
    credentials_client_id = forms.CharField(label="client id (OAuth2)", required=False)
    credentials_client_secret = secret_field("client secret (OAuth2)")
    credentials_scope = forms.CharField(label="scope (OAuth2)", required=False)
    credentials_certificate = forms.CharField(
        label="certificate (mTLS, PEM)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="Leave blank to keep the stored certificate.",
    )
    credentials_private_key = secret_field("private key (mTLS, PEM, unencrypted)", multiline=True)

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
        if kind == self.instance.auth_kind:
            stored = self.instance.auth
            for part in SECRET_PARTS & set(parts):
                parts[part] = parts[part] or getattr(stored, part)
            if kind == "mtls" and not parts["certificate"]:
                parts["certificate"] = getattr(stored, "certificate", "")
        try:
            self.instance.auth = credentials.from_dict({"kind": kind, **parts})
        except InvalidCredentials as exc:
            self.add_error("credentials_kind", str(exc))
        return data

    def add_error(self, field: str | None, error: Any) -> None:
        # The model's validation names its credential field "auth": here that is the kind. Its
        # errors on other fields this form lacks are the form's own.
        error_dict = getattr(error, "error_dict", None)
        if field is None and error_dict:
            for name in [name for name in error_dict if name not in self.fields]:
                target = "credentials_kind" if name == "auth" else NON_FIELD_ERRORS
                if name != target:
                    error_dict.setdefault(target, []).extend(error_dict.pop(name))
        super().add_error(field, error)
