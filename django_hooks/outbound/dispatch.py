"""Recording events: ``send_event`` and signal-driven model events."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, cast

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import CharField, DateTimeField, Field, IntegerField, QuerySet, Value
from django.db.models.signals import post_delete, post_save
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.module_loading import import_string

from django_hooks.conf import hooks_settings
from django_hooks.core.payload import encode_body
from django_hooks.event_types import (
    check_data,
    check_declared,
    patterns_matching,
    validate_event_type,
)
from django_hooks.exceptions import (
    ConfigurationError,
    HooksError,
    InvalidArgument,
)
from django_hooks.models import Delivery, Endpoint, Event, owner_q
from django_hooks.outbound import telemetry
from django_hooks.outbound.wakeups import wake_on_commit

__all__ = ["model_events", "send_event"]

logger = logging.getLogger("django_hooks")


def send_event(
    event_type: str,
    data: Any,
    *,
    owner: models.Model | None = None,
    idempotency_key: str | None = None,
    using: str | None = None,
) -> Event:
    """Record an event and one delivery per subscribed endpoint, in the caller's transaction.

    Deliveries are enqueued once the transaction commits; if it rolls back, nothing is sent.
    The same ``(owner, idempotency_key)`` returns the first event and records nothing new.
    """
    hooks = telemetry.active()
    if hooks is None:
        return _send_event(event_type, data, owner, idempotency_key, using, "")[0]
    with hooks.sending(event_type) as sending:
        event, deliveries = _send_event(
            event_type, data, owner, idempotency_key, using, sending.traceparent
        )
        sending.recorded(event, deliveries)
    return event


def _send_event(
    event_type: str,
    data: Any,
    owner: models.Model | None,
    idempotency_key: str | None,
    using: str | None,
    traceparent: str,
) -> tuple[Event, int | None]:
    """``send_event``'s work; the number of deliveries, or None for an event found by its
    idempotency key."""
    validate_event_type(event_type)
    check_declared(event_type)  # STRICT_EVENT_TYPES
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 255
    ):
        raise InvalidArgument(
            "idempotency_key must be a non-empty string of at most 255 characters"
        )
    owned = owner_q(owner)
    created_at = timezone.now()
    # Encoding now proves the data serializable and within MAX_PAYLOAD_BYTES before any write.
    body = encode_body(event_type, created_at, data, max_bytes=hooks_settings.MAX_PAYLOAD_BYTES)
    check_data(event_type, body)  # VALIDATE_EVENT_DATA
    db = using or router.db_for_write(Event)

    with transaction.atomic(using=db, savepoint=False):
        if idempotency_key is not None:
            existing = Event.objects.using(db).filter(owned, idempotency_key=idempotency_key)
            first = existing.first()
            if first is not None:
                return first, None
        event = Event(
            type=event_type, data=data, idempotency_key=idempotency_key, traceparent=traceparent
        )
        event.owner = owner
        event.created_at = created_at
        if idempotency_key is None:
            event.save(force_insert=True, using=db)
        else:
            try:
                with transaction.atomic(using=db):
                    event.save(force_insert=True, using=db)
            except IntegrityError:
                # Another transaction recorded the same key first.
                return Event.objects.using(db).get(owned, idempotency_key=idempotency_key), None
        ids = record_deliveries(event, owner, created_at, db)
        if ids:
            enqueue_on_commit(ids, using=db)
    return event, len(ids)


def enqueue_on_commit(ids: list[int], *, using: str) -> None:
    """Wake a drain once the current transaction commits: one wake-up per transaction, however
    many deliveries it recorded (a drain takes every due delivery, so which ones does not
    matter). A delivery rolled back with its savepoint is simply not there to take."""
    wake_on_commit(using=using)


#: The columns a new delivery row sets, in the order the INSERT ... SELECT statements list them.
DELIVERY_COLUMNS = (
    "event",
    "endpoint",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "last_error",
)


def subscribers(owner: models.Model | None, event_type: str, db: str) -> QuerySet[Endpoint]:
    """The endpoints that get a delivery of ``owner``'s ``event_type`` events."""
    return Endpoint.objects.using(db).filter(owner_q(owner)).receiving().subscribed_to(event_type)


def record_deliveries(
    event: Event, owner: models.Model | None, created_at: dt.datetime, db: str
) -> list[int]:
    """Insert one pending delivery per subscribed endpoint; return their ids.

    Where the database can return rows from an insert, this is one ``INSERT ... SELECT``: one
    query and no Python work per endpoint, whatever the fan-out. Elsewhere, a select and a
    ``bulk_create``.
    """
    connection = connections[db]
    if not connection.features.can_return_rows_from_bulk_insert:
        deliveries = Delivery.objects.using(db).bulk_create(
            Delivery(event=event, endpoint_id=pk, next_attempt_at=created_at, created_at=created_at)
            for pk in subscribers(owner, event.type, db).values_list("pk", flat=True)
        )
        return [delivery.pk for delivery in deliveries]
    sql, params = delivery_insert(event, owner, created_at, db)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


#: A cached INSERT's parameters: an index into the call's own values, or a value the ORM put in
#: the SQL's parameters that is the same for every call (``is_active = %s`` on Django 6.1+).
Slot = tuple[int, None] | tuple[None, Any]

#: (database alias, has an owner, number of subscription patterns) -> the INSERT's SQL and slots.
_INSERT_SQL: dict[tuple[str, bool, int], tuple[str, list[Slot]]] = {}


def delivery_insert(
    event: Event, owner: models.Model | None, created_at: dt.datetime, db: str
) -> tuple[str, list[Any]]:
    """The ``INSERT ... SELECT`` of ``record_deliveries`` and its parameters.

    Compiling the ORM query costs more than running it, and its SQL depends only on the shape
    of the call (owner or not, how many patterns match the type). So the SQL is compiled once
    per shape, and later calls only bind their values, at the places where the ORM put them.
    A shape is cached only when every one of the call's values was found, in order, among the
    ORM's parameters (the others being constants): if a Django version compiled it otherwise,
    every call would simply go through the ORM.
    """
    connection = connections[db]
    patterns = patterns_matching(event.type)
    when = DateTimeField().get_db_prep_value(created_at, connection)
    owned: list[Any] = []
    if owner is not None:
        owned = [ContentType.objects.db_manager(db).get_for_model(owner).pk, str(owner.pk)]
    like = [f"%|{connection.ops.prep_for_like_query(pattern)}|%" for pattern in patterns]
    values = [event.pk, Delivery.Status.PENDING.value, 0, when, when, "", *owned, "", *like]
    key = (db, owner is not None, len(patterns))
    cached = _INSERT_SQL.get(key)
    if cached is not None:
        sql, slots = cached
        return sql, [values[index] if index is not None else value for index, value in slots]
    sql, compiled = _compile_delivery_insert(event, owner, created_at, db)
    found = _slots(values, list(compiled))
    if found is not None:
        _INSERT_SQL[key] = (sql, found)
    return sql, list(compiled)


def _slots(values: list[Any], compiled: list[Any]) -> list[Slot] | None:
    """Where each of ``values`` sits in ``compiled``, in order; the rest are constants. None if
    some value is not there. Equal is equal (psycopg's ``Int4(0)`` is our ``0``), except that a
    boolean never stands for a number: ``True == 1``, but ``is_active`` is not ``attempts``."""
    slots: list[Slot] = []
    position = 0
    for parameter in compiled:
        if (
            position < len(values)
            and isinstance(parameter, bool) == isinstance(values[position], bool)
            and parameter == values[position]
        ):
            slots.append((position, None))
            position += 1
        else:
            slots.append((None, parameter))
    return slots if position == len(values) else None


def _compile_delivery_insert(
    event: Event, owner: models.Model | None, created_at: dt.datetime, db: str
) -> tuple[str, tuple[Any, ...]]:
    connection = connections[db]
    when = DateTimeField()
    rows = (
        subscribers(owner, event.type, db)
        .annotate(
            _event=Value(event.pk, output_field=CharField()),
            _status=Value(Delivery.Status.PENDING.value, output_field=CharField()),
            _attempts=Value(0, output_field=IntegerField()),
            _next=Value(created_at, output_field=when),
            _created=Value(created_at, output_field=when),
            _error=Value("", output_field=CharField()),
        )
        .values_list("_event", "pk", "_status", "_attempts", "_next", "_created", "_error")
    )
    insert, params = insert_deliveries_sql(rows, db)
    meta = Delivery._meta
    pk_column = str(meta.pk.column) if meta.pk is not None else "id"
    return f"{insert} RETURNING {connection.ops.quote_name(pk_column)}", params


def insert_deliveries_sql(rows: QuerySet[Any], db: str) -> tuple[str, tuple[Any, ...]]:
    """``INSERT INTO`` the delivery table ``SELECT`` rows: a ``values_list`` of
    ``DELIVERY_COLUMNS``' values, in that order."""
    select, params = rows.query.get_compiler(using=db).as_sql()
    quote = connections[db].ops.quote_name
    fields = [cast(Field, Delivery._meta.get_field(name)) for name in DELIVERY_COLUMNS]
    columns = ", ".join(quote(str(field.column)) for field in fields)
    return f"INSERT INTO {quote(Delivery._meta.db_table)} ({columns}) {select}", tuple(params)


# -- model events ----------------------------------------------------------------------------

Serializer = Callable[[models.Model], Any]


def _payload_function(serializer: Any) -> Serializer:
    if serializer is None:
        return lambda instance: model_to_dict(instance)
    if isinstance(serializer, str):
        serializer = import_string(serializer)
    if isinstance(serializer, type) and hasattr(serializer, "to_representation"):
        return lambda instance: serializer(instance).data  # a DRF serializer class
    if callable(serializer):
        return serializer
    raise ConfigurationError(f"{serializer!r} is neither a DRF serializer class nor a callable.")


def _owner_function(owner: Any) -> Callable[[models.Model], models.Model | None]:
    if owner is None:
        return lambda instance: None
    if isinstance(owner, str):

        def by_path(instance: models.Model) -> models.Model | None:
            value: Any = instance
            for part in owner.split("."):
                value = getattr(value, part, None)
                if value is None:
                    return None
            return value

        return by_path
    if callable(owner):
        return owner
    raise ConfigurationError(f"owner must be an attribute path or a callable, not {owner!r}.")


MODEL_EVENT_ACTIONS = ("created", "updated", "deleted")
#: What one MODEL_EVENTS entry may hold: model_events()'s keyword arguments.
MODEL_EVENT_OPTIONS = frozenset({"prefix", "serializer", "owner", "actions"})


def model_events(
    model: type[models.Model] | str,
    *,
    prefix: str | None = None,
    serializer: Any = None,
    owner: Any = None,
    actions: tuple[str, ...] = MODEL_EVENT_ACTIONS,
) -> None:
    """Send ``<prefix>.created`` / ``.updated`` / ``.deleted`` when ``model`` rows change.

    ``serializer`` is a DRF serializer class, a callable ``(instance) -> data``, or a dotted path
    to either; the default is ``model_to_dict``. ``owner`` is an attribute path such as
    ``"organization"`` or a callable ``(instance) -> owner``. The event is recorded in the
    change's transaction: save inside ``transaction.atomic()`` (or with ``ATOMIC_REQUESTS``) so
    that one never commits without the other; in autocommit Django has already committed the
    row when ``post_save`` runs.
    """
    model, prefix, to_data, owner_of = _model_event_parts(model, prefix, serializer, owner, actions)
    uid = f"django_hooks:{model._meta.label}"

    def on_save(
        sender: Any, instance: models.Model, created: bool, raw: bool, **kwargs: Any
    ) -> None:
        action = "created" if created else "updated"
        if raw or action not in actions:
            return
        send_event(
            f"{prefix}.{action}",
            to_data(instance),
            owner=owner_of(instance),
            using=kwargs.get("using"),
        )

    def on_delete(sender: Any, instance: models.Model, **kwargs: Any) -> None:
        send_event(
            f"{prefix}.deleted",
            to_data(instance),
            owner=owner_of(instance),
            using=kwargs.get("using"),
        )

    post_save.connect(on_save, sender=model, weak=False, dispatch_uid=f"{uid}:save")
    if "deleted" in actions:
        post_delete.connect(on_delete, sender=model, weak=False, dispatch_uid=f"{uid}:delete")


def _model_event_parts(
    model: type[models.Model] | str,
    prefix: str | None,
    serializer: Any,
    owner: Any,
    actions: tuple[str, ...],
) -> tuple[type[models.Model], str, Serializer, Callable[[models.Model], models.Model | None]]:
    """Everything ``model_events`` connects, resolved and validated; nothing connected yet."""
    if isinstance(model, str):
        try:
            model = apps.get_model(model)
        except ValueError:
            raise InvalidArgument(f"{model!r} is not a model label such as 'shop.Order'") from None
    prefix = prefix or model._meta.model_name
    validate_event_type(prefix)
    if isinstance(actions, str) or not isinstance(actions, list | tuple | set | frozenset):
        raise ConfigurationError(f"actions must be a list of model event actions, not {actions!r}.")
    unknown = set(actions) - set(MODEL_EVENT_ACTIONS)
    if unknown:
        raise ConfigurationError(f"Unknown model event action(s): {', '.join(sorted(unknown))}.")
    return model, str(prefix), _payload_function(serializer), _owner_function(owner)


#: Errors a MODEL_EVENTS entry can fail with: ours, a model label Django does not know
#: (LookupError, ValueError) and a serializer path that does not import (ImportError).
ENTRY_ERRORS = (HooksError, LookupError, ValueError, ImportError)


def _setting_entry(label: Any, options: Any) -> dict[str, Any]:
    if not isinstance(options, dict):
        raise ConfigurationError(f"must be a dict of model_events() options, not {options!r}.")
    unknown = set(options) - MODEL_EVENT_OPTIONS
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(sorted(map(str, unknown)))}; "
            f"the options are {', '.join(sorted(MODEL_EVENT_OPTIONS))}."
        )
    options = {"actions": MODEL_EVENT_ACTIONS, **options}
    get = options.get
    _model_event_parts(label, get("prefix"), get("serializer"), get("owner"), options["actions"])
    return options


def model_events_setting_errors() -> list[str]:
    """What is wrong with the ``MODEL_EVENTS`` setting, entry by entry (system check E011)."""
    entries = hooks_settings.MODEL_EVENTS or {}
    if not isinstance(entries, dict):
        return ["DJANGO_HOOKS['MODEL_EVENTS'] must be a dict: {\"app.Model\": {options}}."]
    errors = []
    for label, options in entries.items():
        try:
            _setting_entry(label, options)
        except ENTRY_ERRORS as exc:
            errors.append(f"DJANGO_HOOKS['MODEL_EVENTS'][{label!r}]: {exc}")
    return errors


def connect_model_events_setting() -> None:
    """Connect the ``MODEL_EVENTS`` setting: ``{"shop.Order": {"prefix": "order", ...}}``.

    Run from ``ready()``, so it never raises: an entry that cannot work is left unconnected and
    logged, and ``manage.py check`` reports it (``django_hooks.E011``, or ``E005`` for settings
    with unknown keys) instead of every command dying with a traceback.
    """
    try:
        entries = hooks_settings.MODEL_EVENTS or {}
    except ConfigurationError:
        return  # check E005 reports it, and every use of the settings raises it
    if not isinstance(entries, dict):
        logger.error("DJANGO_HOOKS['MODEL_EVENTS'] is not a dict: no model events are connected.")
        return
    for label, options in entries.items():
        try:
            model_events(label, **_setting_entry(label, options))
        except ENTRY_ERRORS as exc:
            logger.error(
                "DJANGO_HOOKS['MODEL_EVENTS'][%r] is not connected: %s (manage.py check reports "
                "it as django_hooks.E011)",
                label,
                exc,
            )
