"""The event feed's write side: each event's final position, fixed as its transaction commits,
and the wake-up of readers waiting on its owner's channel. (Reading is ``django_hooks.api.feed``,
which explains the ordering this keeps.)

Connected in ``apps.ready`` only when the feed is on (the ``FEED`` setting): a site that never
reads the feed pays nothing per commit for it.
"""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models, router
from django.db.models.signals import post_save

from django_hooks.conf import hooks_settings
from django_hooks.core import ids
from django_hooks.core.ids import first_id_at, id_timestamp, new_id
from django_hooks.models import Event
from django_hooks.outbound.wakeups import publish_on_commit

__all__: list[str] = []

CHANNEL_PREFIX = "django_hooks:feed:"


def clock() -> float:
    return ids.clock()


def lag() -> float:
    return float(hooks_settings.FEED_LAG)


def horizon() -> str:
    """Positions below this are final: no transaction can still add an event under it."""
    return first_id_at(clock() - lag())


def channel_for(content_type_id: int | None, owner_id: str | None) -> str:
    return f"{CHANNEL_PREFIX}{content_type_id or ''}:{owner_id or ''}"


def owner_channel(owner: models.Model | None) -> str:
    if owner is None:
        return channel_for(None, None)
    return channel_for(ContentType.objects.get_for_model(owner).pk, str(owner.pk))


# -- on or off ------------------------------------------------------------------------------------


@functools.cache
def _api_installed() -> bool:
    return apps.is_installed("rest_framework")


def feed_enabled() -> bool:
    """The ``FEED`` setting: True, False, or "auto" (on when rest_framework is installed, since
    the feed is served by the REST API)."""
    value = hooks_settings.FEED
    return _api_installed() if value == "auto" else bool(value)


def connect() -> None:
    """Keep feed positions and wake readers from now on (``apps.ready``, when the feed is on)."""
    post_save.connect(on_event_saved, sender=Event, dispatch_uid="django_hooks.feed")


# -- the commit hook ------------------------------------------------------------------------------


def on_event_saved(
    sender: Any,
    instance: Event,
    created: bool,
    raw: bool = False,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    """``post_save`` receiver: check the transaction's new events once it commits."""
    if not created or raw or not feed_enabled():
        return
    channel = channel_for(instance.owner_content_type_id, instance.owner_id)
    publish_on_commit(
        events_committed,
        [(instance.pk, instance.feed_position, channel)],
        using=using or router.db_for_write(Event),
    )


def events_committed(events: list[tuple[str, str, str]], using: str) -> dict[str, str]:
    """Move late-committed events above every horizon served so far; return the position to
    publish on each channel, so waiting readers wake (``wakeups.notify`` publishes them in the
    same Redis round trip as the transaction's wake-up).

    ``events`` are one transaction's (pk, position, channel): one UPDATE for all the late ones
    and one position per channel, whatever the number of events.
    """
    now = clock()
    late = [
        Event(pk=pk, feed_position=new_id("", now=now))
        for pk, position, _ in events
        if now - id_timestamp(position) > lag() / 2
    ]
    if late:
        Event.objects.using(using).bulk_update(late, ["feed_position"], batch_size=500)
    moved = {event.pk: event.feed_position for event in late}
    latest: dict[str, str] = {}
    for pk, position, channel in events:
        latest[channel] = max(latest.get(channel, ""), moved.get(pk, position))
    return latest
