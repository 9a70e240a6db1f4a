"""The customer portal: pages where one owner manages its own endpoints, secrets, test events
and delivery log. Mount it with ``path("webhooks/", include("django_hooks.portal.urls"))``.

    from django_hooks.portal import signed_link
    signed_link(organisation, expires_in=600)  # "/webhooks/link/<token>/", for an iframe
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db import models

__all__ = ["signed_link"]


def signed_link(owner: models.Model, expires_in: float | dt.timedelta = 3600) -> str:
    """A URL path that opens the portal for ``owner`` alone, valid for ``expires_in`` seconds
    (at most 7 days); the portal then runs in its own session (``PORTAL_SESSION_AGE``)."""
    # Imported here: importing django_hooks.portal must not need the app registry.
    from django_hooks.portal.access import signed_link as make_link

    return make_link(owner, expires_in)
