"""The error contract: everything django-hooks raises on purpose is a ``HooksError``, and also the
builtin or Django exception it stands for, importable from ``django_hooks.exceptions``."""

from __future__ import annotations

import ast
import builtins
import datetime as dt
from pathlib import Path

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import override_settings

from django_hooks import exceptions
from django_hooks.exceptions import HooksError

PACKAGE = Path(exceptions.__file__).resolve().parent
BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}

#: Bare raises that are no promise to callers, as (file, function, exception), each with its reason.
NOT_PART_OF_THE_CONTRACT = {
    # PEP 562 module __getattr__ and the settings object: Python's own protocol.
    ("__init__.py", "__getattr__", "AttributeError"),
    ("inbound/__init__.py", "__getattr__", "AttributeError"),
    ("conf.py", "__getattr__", "AttributeError"),
    # A socket read past the attempt's deadline: http.client and urllib3 turn it into their
    # read timeout, which the transport records; it never reaches a caller.
    ("outbound/transport.py", "_time_left", "TimeoutError"),
    ("outbound/transport.py", "_resolve_within", "TimeoutError"),
    # json.loads' parse_constant hook; caught at once and raised as MalformedPayload.
    ("inbound/verifiers.py", "_not_json", "ValueError"),
    # The abstract Verifier.verify_signature: subclasses implement it.
    ("inbound/verifiers.py", "verify_signature", "NotImplementedError"),
    # A branch the type checker cannot see is unreachable.
    ("outbound/delivery.py", "with_db_retries", "AssertionError"),
    # Iterating a feed stream with the wrong kind of loop: Python's iteration protocol.
    ("api/feed.py", "__iter__", "TypeError"),
    ("api/feed.py", "__aiter__", "TypeError"),
}


def bare_raises() -> set[tuple[str, str, str]]:
    """(file, function, exception) for each ``raise`` of a builtin exception or
    ``ImproperlyConfigured`` outside ``core/`` (whose own errors are in core/errors.py)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(("core/", "migrations/")):
            continue
        functions = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        for function in functions:
            for node in ast.walk(function):
                if not isinstance(node, ast.Raise) or node.exc is None:
                    continue
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = getattr(target, "id", None) or getattr(target, "attr", None)
                if name in BUILTIN_ERRORS or name == "ImproperlyConfigured":
                    found.add((relative, function.name, name))
    return found


def test_nothing_raised_on_purpose_is_a_bare_builtin():
    assert bare_raises() - NOT_PART_OF_THE_CONTRACT == set()


def test_the_scan_finds_bare_raises():
    assert ("inbound/verifiers.py", "_not_json", "ValueError") in bare_raises()


@pytest.mark.parametrize("name", exceptions.__all__)
def test_every_exported_exception_is_a_hooks_error(name):
    assert issubclass(getattr(exceptions, name), HooksError)


@pytest.mark.parametrize(
    "name,base",
    [
        ("ConfigurationError", ImproperlyConfigured),
        ("EndpointValidationError", ValidationError),
        ("InvalidArgument", ValueError),
        ("UnsavedOwner", ValueError),
        ("InvalidEventType", ValueError),
        ("InvalidReceiver", ValueError),
        ("InvalidCursor", ValueError),
        ("HandlerNotFound", LookupError),
        ("MissingDependency", ImportError),
        ("BlockedRequest", requests.ConnectionError),
        ("ResponseBodyError", requests.ConnectionError),
        ("ServerDidNotStart", RuntimeError),
        ("DrainTimeout", TimeoutError),
        ("UnsafeURL", ValueError),
        ("BlockedAddress", ValueError),
    ],
)
def test_each_also_is_what_it_replaces(name, base):
    assert issubclass(getattr(exceptions, name), base)


def test_the_settings_raise_configuration_errors():
    from django_hooks.conf import hooks_settings
    from django_hooks.outbound.client import configured_session

    with override_settings(DJANGO_HOOKS={"TIMOUT": 1}):
        with pytest.raises(exceptions.ConfigurationError, match="did you mean 'TIMEOUT'"):
            hooks_settings.TIMEOUT  # noqa: B018
    with override_settings(DJANGO_HOOKS={"SESSION": "tests.nowhere.session"}):
        with pytest.raises(exceptions.ConfigurationError, match="SESSION"):
            configured_session()


def test_bad_receiver_options_raise_invalid_receiver():
    from django_hooks.inbound import HMACVerifier
    from django_hooks.inbound.verifiers import get_verifier

    with pytest.raises(exceptions.InvalidReceiver, match="header"):
        HMACVerifier(header="")
    with pytest.raises(exceptions.InvalidReceiver, match="unknown webhook provider"):
        get_verifier("gitlab")


@pytest.mark.django_db
def test_bad_arguments_raise_invalid_argument(django_user_model):
    import django_hooks
    from django_hooks.internal.retention import prune
    from django_hooks.models import Endpoint
    from django_hooks.outbound.operations import recover_deliveries

    with pytest.raises(exceptions.InvalidArgument, match="idempotency_key"):
        django_hooks.send_event("order.paid", {}, idempotency_key="")
    with pytest.raises(exceptions.UnsavedOwner, match="saved"):
        django_hooks.send_event("order.paid", {}, owner=django_user_model(username="new"))
    with pytest.raises(exceptions.InvalidArgument, match="batch_size"):
        prune(batch_size=0)
    with pytest.raises(exceptions.InvalidArgument, match="older_than"):
        prune(older_than=dt.timedelta(-1))
    endpoint = Endpoint.objects.create(url="http://127.0.0.1:9/")
    with pytest.raises(exceptions.InvalidArgument, match="grace_period"):
        endpoint.rotate_secret(-1)
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(exceptions.InvalidArgument, match="later"):
        recover_deliveries(endpoint, now, now)


def test_an_invalid_cursor_is_a_hooks_error():
    from django_hooks.api.feed import check_cursor

    with pytest.raises(exceptions.InvalidCursor):
        check_cursor("not a cursor")
