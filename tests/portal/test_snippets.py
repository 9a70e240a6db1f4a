"""The verification snippets the portal shows work as written, against a webhook signed the
way the workers sign it (and refuse a tampered one)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from django_hooks.core.signing import generate_secret, signature_header
from django_hooks.portal.snippets import SNIPPETS

CODE = {snippet.slug: snippet.code for snippet in SNIPPETS}


@pytest.fixture
def signed(monkeypatch):
    secret = generate_secret()
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    body = json.dumps(
        {"type": "order.paid", "timestamp": "2026-12-01T00:00:00Z", "data": {"id": 42}}
    ).encode()
    now = int(time.time())
    old = generate_secret()  # during a rotation: two signatures, ours is the second
    headers = {
        "webhook-id": "msg_2mZ8kq1XJ6cQYH7w3sVt9R",
        "webhook-timestamp": str(now),
        "webhook-signature": signature_header(
            [old, secret], "msg_2mZ8kq1XJ6cQYH7w3sVt9R", now, body
        ),
        "content-type": "application/json",
    }
    return body, headers


def test_no_snippet_holds_a_secret():
    for snippet in SNIPPETS:
        assert "whsec_" not in snippet.code.replace('"whsec_..."', "").replace(
            '"whsec_"', ""
        ).replace("/^whsec_/", ""), snippet.slug


@pytest.mark.parametrize("slug", ["python", "svix"])
def test_the_python_snippets_verify(slug, signed):
    body, headers = signed
    namespace: dict = {}
    exec(compile(CODE[slug], f"<{slug} snippet>", "exec"), namespace)  # noqa: S102
    assert namespace["handle"](body, headers)["data"] == {"id": 42}
    with pytest.raises(PermissionError):
        namespace["handle"](body.replace(b"42", b"43"), headers)


@pytest.mark.django_db
def test_the_django_snippet_verifies(signed):
    from django.test import RequestFactory

    body, headers = signed
    namespace: dict = {}
    exec(compile(CODE["django"], "<django snippet>", "exec"), namespace)  # noqa: S102
    view = namespace["our_webhooks"]
    factory = RequestFactory()
    meta = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "content-type"
    }
    ok = factory.post("/hooks/", body, content_type="application/json", **meta)
    assert view(ok).status_code == 204
    tampered = factory.post(
        "/hooks/", body.replace(b"42", b"43"), content_type="application/json", **meta
    )
    assert view(tampered).status_code >= 400


@pytest.mark.skipif(shutil.which("node") is None, reason="no node on this machine")
def test_the_dependency_free_node_snippet_verifies(signed, tmp_path):
    body, headers = signed
    (tmp_path / "verify.js").write_text(CODE["node-crypto"])
    script = (
        "const { verify } = require('./verify.js');"
        "const [body, headers] = [process.argv[1], JSON.parse(process.argv[2])];"
        "try { console.log(JSON.stringify(verify(body, headers).data)); }"
        "catch (e) { console.log('refused: ' + e.message); }"
    )

    def run(text: bytes) -> str:
        done = subprocess.run(
            ["node", "-e", script, text.decode(), json.dumps(headers)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()

    assert run(body) == '{"id":42}'
    assert run(body.replace(b"42", b"43")) == "refused: bad signature"
