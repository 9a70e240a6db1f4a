"""Pieces shared by the webhook ModelAdmins: cheap pagination and readable JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.html import format_html

COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows: ``SELECT COUNT(*)`` over a million deliveries is the
    slowest query of a list page, and nobody pages past the hundredth page (they filter)."""

    @cached_property
    def count(self) -> int:
        return self.object_list[:COUNT_CAP].count()  # type: ignore[attr-defined,no-any-return]


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON in a ``<pre>`` block (escaped)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="hooks-json">{}</pre>', text)


def status_badge(status: str, label: str | None = None) -> str:
    return format_html('<span class="hooks-badge hooks-{}">{}</span>', status, label or status)
