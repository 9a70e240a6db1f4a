"""The docs' samples look like the real thing, checked against what the code makes: event ids,
secrets, the webhook request a receiver gets, and the admin's menu names. (Printed output of the
demo and of `serve` is compared with real runs in tests/test_demo.py and tests/test_serve.py.)"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys

import pytest

import django_hooks
from django_hooks.conf import DEFAULTS
from django_hooks.core.ids import id_timestamp
from django_hooks.core.payload import encode_body
from django_hooks.core.signing import decode_secret, generate_secret, signature_header
from django_hooks.models import Endpoint
from django_hooks.testing import webhook_outbox
from tests.docs.samples import DOCS, PAGES, ROOT, block_after

ID_SAMPLE = re.compile(r"\bmsg_[A-Za-z0-9]{8,}")
SECRET_SAMPLE = re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}")
REAL_ID = re.compile(r"msg_[0-9A-HJKMNP-TV-Z]{26}")  # new_id(): a ULID in Crockford's base32
BREADCRUMB = re.compile(r"\b([A-Z][A-Za-z_]*(?: [A-Z][a-z]+)*) › ([A-Z][a-z-]+(?: [a-z]+)*)")


def samples(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), found)
        for page in PAGES
        for found in pattern.findall(page.read_text())
    ]


def test_every_event_id_in_the_docs_is_a_real_one():
    found = samples(ID_SAMPLE)
    assert len(found) >= 3
    latest = dt.datetime.now(dt.UTC) + dt.timedelta(days=366)

    def real(sample: str) -> bool:
        if not REAL_ID.fullmatch(sample):
            return False
        made = dt.datetime.fromtimestamp(id_timestamp(sample), dt.UTC)
        return dt.datetime(2024, 1, 1, tzinfo=dt.UTC) < made < latest

    wrong = [(page, sample) for page, sample in found if not real(sample)]
    assert not wrong, (
        "event ids are msg_ + 26 characters of Crockford base32 made by new_id() (e.g. "
        f"{django_hooks.models.new_event_id()}); these are not: {wrong}"
    )


def test_every_secret_in_the_docs_is_as_long_as_a_generated_one():
    found = samples(SECRET_SAMPLE)
    assert found
    real_length = len(generate_secret())
    wrong = []
    for page, sample in found:
        try:
            decode_secret(sample)
        except ValueError as exc:
            wrong.append((page, sample, str(exc)))
            continue
        if len(sample) != real_length:
            wrong.append((page, sample, f"{len(sample)} characters, not {real_length}"))
    assert not wrong, f"secret samples unlike generate_secret()'s: {wrong}"


def parse_http(block: str) -> tuple[dict[str, str], bytes]:
    head, body = block.split("\n\n", 1)
    request_line, *lines = head.splitlines()
    assert request_line.startswith("POST ")
    headers = dict(line.split(": ", 1) for line in lines)
    return headers, body.strip().encode()


@pytest.mark.django_db
def test_the_request_a_receiver_gets_is_what_the_engine_sends():
    page = (DOCS / "sending.md").read_text()
    heading = "## What the receiver gets"
    headers, body = parse_http(block_after(DOCS / "sending.md", heading, lang="http"))
    intro = page[page.index(heading) : page.index("```http", page.index(heading))]
    stated = SECRET_SAMPLE.findall(intro)
    assert len(stated) == 1, "the text above the sample states the secret that signed it"
    secret = stated[0]

    payload = json.loads(body)
    created = dt.datetime.fromisoformat(payload["timestamp"])
    assert body == encode_body(payload["type"], created, payload["data"]), (
        "the sample body is not encoded as the engine encodes it"
    )
    msg_id, attempted = headers["webhook-id"], int(headers["webhook-timestamp"])
    assert REAL_ID.fullmatch(msg_id)
    assert abs(id_timestamp(msg_id) - created.timestamp()) < 0.001, "id and event time disagree"
    assert 0 <= attempted - created.timestamp() < 60, "a first attempt comes right after the event"
    assert headers["webhook-signature"] == signature_header([secret], msg_id, attempted, body)
    assert headers["user-agent"] == DEFAULTS["USER_AGENT"]

    Endpoint.objects.create(url="http://127.0.0.1:9/webhooks")
    with webhook_outbox() as outbox:
        django_hooks.send_event(payload["type"], payload["data"])
        (sent,) = outbox.deliver()
    assert {name.lower() for name in sent.headers} == set(headers) - {"user-agent"}
    assert sent.headers["content-type"] == headers["content-type"]
    assert sent.headers["webhook-signature"].startswith("v1,")


def admin_menu() -> dict[str, list[str]]:
    """The example project's admin index: app names and the model names listed under each."""
    script = (
        "import json, django; django.setup()\n"
        "from django.contrib import admin\n"
        "from django.utils.text import capfirst\n"
        "menu = {}\n"
        "for model in admin.site._registry:\n"
        "    app = str(model._meta.app_config.verbose_name)\n"
        "    menu.setdefault(app, []).append(str(capfirst(model._meta.verbose_name_plural)))\n"
        "print(json.dumps(menu))\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shop_site.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example_project")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_admin_breadcrumb_in_the_docs_is_a_real_one():
    found = samples(BREADCRUMB)
    assert len(found) >= 3
    menu = admin_menu()
    wrong = [
        (page, f"{app} › {model}") for page, (app, model) in found if model not in menu.get(app, [])
    ]
    assert not wrong, f"the admin has no such page (it has {menu}): {wrong}"
