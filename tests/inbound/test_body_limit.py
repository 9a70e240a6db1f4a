"""Issue 15, item 14: a receiver's body is never read past its limit, under ASGI (through
Django's own handler, wrapped in ``ReceiverBodyLimit``) or WSGI, chunked or not."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.test import override_settings

from django_hooks.core.ids import new_id
from django_hooks.core.signing import Signer
from django_hooks.inbound.asgi import ReceiverBodyLimit
from tests.testapp import views

CHUNK = 1024
SMALL_LIMIT = 100  # tests/testapp/views.py: the "small" receiver


async def stay_connected() -> dict:
    """What a client that sent its whole body does next: nothing, until it is answered."""
    await asyncio.get_running_loop().create_future()  # cancelled once the response is sent
    return {"type": "http.disconnect"}


class ChunkedClient:
    """An ASGI client sending ``total`` bytes in chunks (no Content-Length); counts what was read."""

    def __init__(self, total: int, headers: list[tuple[bytes, bytes]] = ()) -> None:
        self.total = total
        self.read = 0
        self.headers = [(b"content-type", b"application/json"), *headers]
        self.messages: list[dict] = []

    async def receive(self) -> dict:
        if self.read >= self.total:
            return await stay_connected()
        chunk = min(CHUNK, self.total - self.read)
        self.read += chunk
        return {"type": "http.request", "body": b"x" * chunk, "more_body": self.read < self.total}

    async def send(self, message: dict) -> None:
        self.messages.append(message)

    def post(self, app, path: str) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        async_to_sync(app)(scope, self.receive, self.send)
        [start] = [m for m in self.messages if m["type"] == "http.response.start"]
        body = b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )
        return start["status"], body


@pytest.fixture
def asgi_app():
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=None):
        yield ReceiverBodyLimit(get_asgi_application())


@pytest.mark.parametrize(
    ("path", "limit"), [("/hooks/small/", SMALL_LIMIT), ("/hooks/standard/", 65536)]
)
def test_asgi_stops_reading_a_chunked_body_at_the_receivers_limit(asgi_app, path, limit):
    sender = ChunkedClient(total=50 * 1024 * 1024)
    with override_settings(DJANGO_HOOKS={"INBOUND_MAX_BODY_BYTES": 65536}):
        status, body = sender.post(asgi_app, path)
    assert status == 413
    assert json.loads(body) == {"error": f"body larger than {limit} bytes"}
    assert sender.read <= limit + CHUNK  # not the 50 MiB sent


def test_asgi_refuses_a_declared_length_over_the_limit_without_reading(asgi_app):
    sender = ChunkedClient(total=10 * CHUNK, headers=[(b"content-length", b"10240")])
    status, _ = sender.post(asgi_app, "/hooks/small/")
    assert (status, sender.read) == (413, 0)


@pytest.mark.django_db(transaction=True)
def test_asgi_passes_a_body_within_the_limit_to_the_receiver(asgi_app):
    views.calls.clear()
    body = json.dumps({"type": "order.paid", "data": {"id": 1}}).encode()
    msg_id, timestamp = new_id(), int(time.time())
    headers = [
        (b"webhook-id", msg_id.encode()),
        (b"webhook-timestamp", str(timestamp).encode()),
        (b"webhook-signature", Signer([views.SECRET]).header(msg_id, timestamp, body).encode()),
    ]

    class Signed(ChunkedClient):
        async def receive(self) -> dict:
            if self.read:
                return await stay_connected()
            self.read = len(body)
            return {"type": "http.request", "body": body, "more_body": False}

    status, _ = Signed(total=len(body), headers=headers).post(asgi_app, "/hooks/standard/")
    assert status == 204
    assert [call.id for call in views.calls] == [msg_id]


def test_asgi_leaves_other_requests_alone(asgi_app):
    sender = ChunkedClient(total=4 * CHUNK)
    status, _ = sender.post(asgi_app, "/api/hooks/endpoints/")  # not a receiver: Django reads it
    assert status in (401, 403)
    assert sender.read == 4 * CHUNK


class CountingInput(io.RawIOBase):
    """A WSGI input stream that would go on forever; counts the bytes read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[: len(buffer)] = b"x" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


@pytest.mark.parametrize("declared", [None, str(50 * 1024 * 1024)])
def test_wsgi_never_reads_past_the_declared_length_or_the_limit(declared):
    stream = CountingInput()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/hooks/small/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
    }
    if declared is not None:
        environ["CONTENT_LENGTH"] = declared
    statuses: list[str] = []
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=None):
        b"".join(get_wsgi_application()(environ, lambda status, headers: statuses.append(status)))
    # Chunked without a length: Django reads nothing, the unsigned empty body is refused.
    assert statuses[0].split()[0] == ("400" if declared is None else "413")
    assert stream.read_bytes == 0


def test_receivers_served_over_unwrapped_asgi_say_so_once(monkeypatch, caplog):
    from django_hooks.inbound import decorators

    monkeypatch.setattr(decorators, "_warned_asgi", False)
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=None):
        app = get_asgi_application()
        for _ in range(2):
            ChunkedClient(total=10).post(app, "/hooks/small/")
    assert [r.getMessage() for r in caplog.records].count(
        "Webhook receivers are served over ASGI without django_hooks.inbound.asgi."
        "ReceiverBodyLimit: Django reads each body whole before the size check."
    ) == 1


def test_asgi_limits_receivers_configured_in_settings(asgi_app):
    inbound = {
        "tiny": {
            "provider": "standard",
            "secret": views.SECRET,
            "max_body_bytes": 200,
            "handler": "tests.testapp.views.on_configured",
        },
    }
    sender = ChunkedClient(total=1024 * 1024)
    with override_settings(DJANGO_HOOKS={"INBOUND": inbound}):
        status, body = sender.post(asgi_app, "/hooks/in/tiny/")
    assert (status, json.loads(body)) == (413, {"error": "body larger than 200 bytes"})
    assert sender.read <= 200 + CHUNK
