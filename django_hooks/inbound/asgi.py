"""ASGI middleware: a webhook receiver's body is read only up to the receiver's limit.

Django's ASGI handler reads a request's whole body (into a temporary file) before any view
runs, whatever its size and ``DATA_UPLOAD_MAX_MEMORY_SIZE``; a chunked body declares no length
to refuse early. Wrap the application so calls to ``@webhook_receiver`` views stop at the limit::

    from django.core.asgi import get_asgi_application
    from django_hooks.inbound.asgi import ReceiverBodyLimit

    application = ReceiverBodyLimit(get_asgi_application())

Other requests pass through untouched. Under WSGI, Django reads at most ``Content-Length`` bytes
and the receiver refuses a declared length over its limit before reading, so nothing is needed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.urls import Resolver404, resolve

__all__ = ["ReceiverBodyLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Set on a scope whose body this middleware read: the receiver knows its limit held.
LIMITED = "django_hooks.body_limited"


def receiver_body_limit(view: Any, kwargs: dict[str, Any] | None = None) -> int | None:
    """The body limit of a webhook receiver view called with ``kwargs`` (the URL's), or None
    for any other view."""
    limit = getattr(view, "webhook_body_limit", None)
    return None if limit is None else limit(**(kwargs or {}))


def _path_info(scope: Scope) -> str:
    path, root = scope.get("path", "") or "/", scope.get("root_path", "") or ""
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    return path


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class ReceiverBodyLimit:
    """Reads a receiver's body itself, at most its limit, and answers 413 past it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)  # the rest is never read
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: the disconnect Django listens for

        await self.app({**scope, LIMITED: True}, replay, send)

    def _limit(self, scope: Scope) -> int | None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            return None
        try:
            match = resolve(_path_info(scope))
        except Resolver404:
            return None
        return receiver_body_limit(match.func, match.kwargs)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"error": f"body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
