"""The endpoint form: event types one per line, extra headers as name/value rows and the owner by
type and id, instead of raw JSON. The model's own validation (the one the REST API runs) still
judges every value and names each bad entry; these fields only turn what was typed into it."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from django_hooks.models import MAX_CUSTOM_HEADERS, Endpoint

__all__: list[str] = []

#: The REST API's limits on ``event_types`` (its serializer's ``ListField``).
MAX_SUBSCRIPTIONS = 200
MAX_EVENT_TYPE = 255
#: Empty header rows offered below the filled ones.
SPARE_HEADER_ROWS = 3
#: Rows read back from a submitted form, at most: more than the model accepts, so that too many
#: headers get the model's "At most 20 headers" rather than being dropped.
MAX_HEADER_ROWS = MAX_CUSTOM_HEADERS + 30
#: Apps whose objects never own endpoints: left out of the owner type choices.
NOT_OWNERS = ("admin", "contenttypes", "sessions", "django_hooks")

ENTRY_SEPARATORS = re.compile(r"[,\r\n]+")


class EventTypesField(forms.Field):
    """Event types and patterns, one per line or comma-separated (a JSON list is read too)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget",
            forms.Textarea(
                attrs={
                    "rows": 4,
                    "cols": 40,
                    "spellcheck": "false",
                    "autocapitalize": "none",
                    "autocomplete": "off",
                }
            ),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(entry) for entry in value)
        return value  # the text as typed, shown again with its errors

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            entries = [str(entry).strip() for entry in value]
        elif value in self.empty_values:
            return []
        elif str(value).strip().startswith("["):
            entries = json_list(str(value))
        else:
            entries = [entry.strip() for entry in ENTRY_SEPARATORS.split(str(value))]
        return list(dict.fromkeys(entry for entry in entries if entry))  # in order, once each

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        problems = [
            f"{entry[:40]!r}… is over {MAX_EVENT_TYPE} characters."
            for entry in value
            if len(entry) > MAX_EVENT_TYPE
        ]
        if len(value) > MAX_SUBSCRIPTIONS:
            problems.insert(0, f"At most {MAX_SUBSCRIPTIONS} event types; got {len(value)}.")
        if problems:
            raise ValidationError(problems)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(initial) != self.to_python(data)
        except ValidationError:
            return True


def json_list(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError(
            "Starts with “[” but is not a JSON list: write one event type per line instead."
        ) from None
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ValidationError("A JSON list here holds event types as strings only.")
    return [entry.strip() for entry in value]


class HeaderRowsWidget(forms.Widget):
    """One row of two labelled text inputs (name, value) per header, and a few empty rows."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[tuple[str, str]]:
        rows = []
        for index in range(MAX_HEADER_ROWS):
            keys = (f"{name}-{index}-name", f"{name}-{index}-value")
            if keys[0] in data or keys[1] in data:
                rows.append((data.get(keys[0], ""), data.get(keys[1], "")))
        return rows

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return not any(
            f"{name}-{index}-{part}" in data
            for index in range(MAX_HEADER_ROWS)
            for part in ("name", "value")
        )

    def id_for_label(self, id_: str) -> str:
        return f"{id_}-0-name" if id_ else id_  # the label focuses the first name

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        rows = header_rows(value)
        while rows and not "".join(rows[-1]).strip():  # shown again after an error: the spare
            rows.pop()  # rows come back once, and the rows above keep their numbers
        rows += [("", "")] * max(0, min(SPARE_HEADER_ROWS, MAX_CUSTOM_HEADERS - len(rows)))
        base_id = (attrs or {}).get("id") or self.attrs.get("id") or f"id_{name}"
        # The admin gives help text the id "<id_for_label>_helptext": every input points to it.
        # No maxlength: a browser would cut a pasted value silently; the model names the limit.
        help_id = f"{self.id_for_label(base_id)}_helptext"
        body = format_html_join(
            "\n",
            '<tr><td><label class="visually-hidden" for="{0}-{1}-name">Header {2} name</label>'
            '<input type="text" name="{3}-{1}-name" id="{0}-{1}-name" value="{4}" '
            'aria-describedby="{6}" autocomplete="off" spellcheck="false" '
            'class="vTextField"></td>'
            '<td><label class="visually-hidden" for="{0}-{1}-value">Header {2} value</label>'
            '<input type="text" name="{3}-{1}-value" id="{0}-{1}-value" value="{5}" '
            'aria-describedby="{6}" autocomplete="off" spellcheck="false" '
            'class="vTextField"></td></tr>',
            (
                (base_id, index, index + 1, name, header, text, help_id)
                for index, (header, text) in enumerate(rows)
            ),
        )
        return format_html(
            '<table class="hooks-header-rows" id="{}"><thead><tr><th scope="col">Name</th>'
            '<th scope="col">Value</th></tr></thead><tbody>\n{}\n</tbody></table>',
            base_id,
            body,
        )


def header_rows(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [(str(name), str(text)) for name, text in value.items()]
    if isinstance(value, list | tuple):
        return [(str(name), str(text)) for name, text in value]
    return []


class HeaderRowsField(forms.Field):
    """Extra headers as name/value rows; empty rows are ignored. Names and values are checked
    by the model's header rules."""

    widget = HeaderRowsWidget

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> dict[str, str]:
        if isinstance(value, dict):
            return value
        headers: dict[str, str] = {}
        seen: dict[str, str] = {}
        problems = []
        for number, (name, text) in enumerate(header_rows(value), start=1):
            name, text = name.strip(), text.strip()
            if not name and not text:
                continue
            if not name:
                problems.append(f"Row {number} has a value but no header name.")
            elif name.lower() in seen:
                problems.append(
                    f"{name!r} is given twice (as {seen[name.lower()]!r} too): header names "
                    "are case-insensitive, so give each one once."
                )
            else:
                seen[name.lower()] = name
                headers[name] = text
        if problems:
            raise ValidationError(problems)
        return headers

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(initial or {}) != self.to_python(data)
        except ValidationError:
            return True


class EndpointAdminForm(forms.ModelForm):
    event_types = EventTypesField(
        label="Event types",
        help_text='One per line (or comma-separated); empty for every event. "order.*" matches '
        'every order event, "*" every event.',
    )
    headers = HeaderRowsField(
        label="Extra headers",
        help_text="Sent with every request, e.g. an Authorization header your receiver checks. "
        "Leave a row empty to drop it; save to get more empty rows.",
    )

    class Meta:
        model = Endpoint
        # The ModelAdmin adds the other fields, with its own form field options.
        fields = ["event_types", "headers", "owner_content_type", "owner_id"]
        labels = {"owner_content_type": "Owner type", "owner_id": "Owner id"}
        help_texts = {
            "owner_content_type": "The kind of object (a customer, an organisation…) that owns "
            "this endpoint. An owned endpoint receives only its owner's events; one without an "
            "owner receives only events sent without one.",
            "owner_id": "That object's primary key.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "owner_content_type" in self.fields:
            field = self.fields["owner_content_type"]
            field.queryset = owner_types()  # type: ignore[attr-defined]
            field.empty_label = "no owner"  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "owner_content_type" not in self.fields or self.has_error("owner_content_type"):
            return data
        content_type = data.get("owner_content_type")
        owner_id = (data.get("owner_id") or "").strip()
        if content_type is None and not owner_id:
            data["owner_id"] = None
        elif content_type is None:
            self.add_error(
                "owner_content_type",
                f"Choose the type of the owner with id {owner_id!r}, or clear the owner id.",
            )
        elif not owner_id:
            self.add_error(
                "owner_id",
                f"Enter the id of the {content_type.name} that owns this endpoint, or choose "
                "“no owner”.",
            )
        else:
            owner = find_owner(content_type, owner_id)
            if owner is None:
                self.add_error("owner_id", f"There is no {content_type.name} with id {owner_id!r}.")
            else:
                data["owner_id"] = str(owner.pk)  # as send_event(owner=...) matches it
        return data


def owner_types() -> Any:
    """The content types an owner can be: rows of the project's own tables (no proxies, no
    unmanaged placeholders), outside the apps whose objects never own endpoints."""
    candidates = ContentType.objects.exclude(app_label__in=NOT_OWNERS)
    ids = [
        content_type.pk
        for content_type in candidates
        if (model := content_type.model_class()) is not None
        and model._meta.managed
        and not model._meta.proxy
    ]
    return ContentType.objects.filter(pk__in=ids).order_by("app_label", "model")


def find_owner(content_type: ContentType, owner_id: str) -> Any:
    model = content_type.model_class()
    if model is None:  # a content type left behind by a removed app
        return None
    try:
        return model._default_manager.get(pk=owner_id)
    except (ObjectDoesNotExist, ValidationError, ValueError, TypeError, OverflowError):
        return None
