"""The portal's forms. They only parse what a browser sends; the endpoint rules (the SSRF guard,
subscriptions, the operator's disable) are the REST API's, applied by its serializer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils import timezone

from django_hooks.conf import hooks_settings
from django_hooks.event_types import EventType, declared_event_types, is_pattern
from django_hooks.exceptions import EndpointValidationError
from django_hooks.internal.writeonly import (
    HIDDEN_VALUE,
    EndpointCredentialsForm,
    WriteOnlyInput,
    keep_hidden_headers,
)
from django_hooks.models import MAX_CUSTOM_HEADERS, Delivery

__all__: list[str] = []


@dataclass(frozen=True)
class CatalogueEntry:
    """An event type as the subscription form shows it."""

    name: str
    description: str
    schema: str | None  # the JSON Schema, indented, or None

    @classmethod
    def of(cls, event_type: EventType) -> CatalogueEntry:
        schema = None
        if event_type.schema is not None:
            schema = json.dumps(event_type.schema, indent=2, sort_keys=True, ensure_ascii=False)
        return cls(event_type.name, event_type.description, schema)


def subscribable_types() -> list[CatalogueEntry]:
    """The catalogue an endpoint can subscribe to (test events reach it whatever it picks)."""
    test_type = hooks_settings.TEST_EVENT_TYPE
    return [CatalogueEntry.of(t) for name, t in declared_event_types().items() if name != test_type]


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2048,
        help_text="The https:// address that receives the webhooks.",
        widget=forms.TextInput(
            attrs={"inputmode": "url", "autocomplete": "url", "spellcheck": "false"}
        ),
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For your own reference.",
    )
    event_types = forms.MultipleChoiceField(
        label="Event types", required=False, widget=forms.CheckboxSelectMultiple
    )
    other_types = forms.CharField(
        label="Other event types or patterns",
        required=False,
        max_length=4000,
        help_text='Comma-separated, such as "order.*" for every order event.',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalogue = subscribable_types()
        field = self.fields["event_types"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(entry.name, entry.name) for entry in self.catalogue]

    @classmethod
    def initial_for(cls, endpoint: Any) -> dict[str, Any]:
        known = {entry.name for entry in subscribable_types()}
        picked = [t for t in endpoint.event_types if t in known]
        other = [t for t in endpoint.event_types if t not in known]
        return {
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": picked,
            "other_types": ", ".join(other),
        }

    def clean_other_types(self) -> list[str]:
        value = self.cleaned_data.get("other_types") or ""
        patterns = [p.strip() for p in value.split(",") if p.strip()]
        bad = [p for p in patterns if not is_pattern(p)]
        if bad:
            raise forms.ValidationError(
                f'{bad[0]!r} is not an event type or a pattern such as "order.*".'
            )
        return patterns

    def subscriptions(self) -> list[str]:
        """The ``event_types`` list the endpoint gets: the picked types, then the others."""
        picked = list(self.cleaned_data.get("event_types") or [])
        others = [p for p in self.cleaned_data.get("other_types") or [] if p not in picked]
        return picked + others

    @property
    def selected(self) -> set[str]:
        """The checked catalogue entries, for the template's checkboxes."""
        field = self["event_types"]
        return set(field.value() or [])


#: Empty rows for new headers below the stored ones.
NEW_HEADER_ROWS = 3


class CredentialsForm(EndpointCredentialsForm):
    """The receiver credentials (the admin's form: write-only secrets) and the custom headers:
    each stored one listed by name, its value hidden, to replace or delete; new ones below."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["credentials_kind"].label = "Kind"
        self.stored_headers = dict(self.instance.headers or {})
        if self.is_bound:  # the rows the page listed (the stored set may have changed since)
            names = [
                str(self.data[f"header_{i}_name"])
                for i in range(MAX_CUSTOM_HEADERS)
                if f"header_{i}_name" in self.data
            ]
        else:
            names = sorted(self.stored_headers, key=str.lower)
        self.listed = names
        for i, name in enumerate(names):
            self.fields[f"header_{i}_name"] = forms.CharField(
                initial=name, required=False, widget=forms.HiddenInput
            )
            self.fields[f"header_{i}_value"] = forms.CharField(
                label=f"New value for {name}",
                required=False,
                widget=WriteOnlyInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            )
            self.fields[f"header_{i}_delete"] = forms.BooleanField(
                label=f"Delete {name}", required=False
            )
        spare = max(0, min(NEW_HEADER_ROWS, MAX_CUSTOM_HEADERS - len(names)))
        self.spare = spare if not self.is_bound else NEW_HEADER_ROWS
        for j in range(self.spare):
            self.fields[f"new_{j}_name"] = forms.CharField(
                label=f"New header {j + 1}: name",
                required=False,
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            )
            self.fields[f"new_{j}_value"] = forms.CharField(
                label=f"New header {j + 1}: value",
                required=False,
                widget=WriteOnlyInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            )

    def header_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "hidden": HIDDEN_VALUE,
                "name_field": self[f"header_{i}_name"],
                "value": self[f"header_{i}_value"],
                "delete": self[f"header_{i}_delete"],
            }
            for i, name in enumerate(self.listed)
        ]

    def new_rows(self) -> list[dict[str, Any]]:
        return [
            {"name": self[f"new_{j}_name"], "value": self[f"new_{j}_value"]}
            for j in range(self.spare)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        headers: dict[str, str] = {}
        seen: dict[str, str] = {}
        problems = []
        rows = [
            (name, data.get(f"header_{i}_value") or HIDDEN_VALUE)
            for i, name in enumerate(self.listed)
            if not data.get(f"header_{i}_delete")
        ]
        for j in range(self.spare):
            name = (data.get(f"new_{j}_name") or "").strip()
            value = data.get(f"new_{j}_value") or ""
            if value and not name:
                problems.append(f"New header {j + 1} has a value but no name.")
            elif name and not value:
                problems.append(f"Enter a value for the new header {name!r}.")
            elif name:
                rows.append((name, value))
        for name, value in rows:
            if name.lower() in seen:
                problems.append(
                    f"{name!r} is given twice (as {seen[name.lower()]!r} too): header names are "
                    "case-insensitive, so give each one once."
                )
            seen[name.lower()] = name
            headers[name] = value
        if not problems:
            try:
                self.instance.headers = keep_hidden_headers(headers, self.stored_headers)
            except EndpointValidationError as exc:
                problems += exc.message_dict["headers"]
        for problem in problems:
            self.add_error(None, problem)
        return data


class RecoverForm(forms.Form):
    since = forms.DateTimeField(
        label="Failed since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label="Until (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        self.fields["since"].help_text = f"Time zone {zone}."
        self.fields["until"].help_text = f"Time zone {zone}; empty for now."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "Must be later than “Failed since”.")
        return data


def test_event_choices() -> list[tuple[str, str]]:
    """What a test send may carry: the test type, or a declared type's example."""
    test_type = hooks_settings.TEST_EVENT_TYPE
    choices = [(test_type, f"{test_type} (a test message)")]
    for name, event_type in declared_event_types().items():
        if name != test_type and event_type.example is not None:
            choices.append((name, f"{name} (its example data)"))
    return choices


class TestEventForm(forms.Form):
    event_type = forms.ChoiceField(label="Event type")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["event_type"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = test_event_choices()


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any"), *Delivery.Status.choices]
    )
    event_type = forms.CharField(
        label="Event type",
        required=False,
        max_length=255,
        help_text='A type, or a pattern such as "order.*".',
        widget=forms.TextInput(attrs={"list": "portal-event-types", "spellcheck": "false"}),
    )
    before = forms.IntegerField(
        required=False, min_value=1, max_value=10**18, widget=forms.HiddenInput
    )

    def clean_event_type(self) -> str:
        value = (self.cleaned_data.get("event_type") or "").strip()
        if value and not is_pattern(value):
            raise forms.ValidationError(
                f'{value!r} is not an event type or a pattern such as "order.*".'
            )
        return value
