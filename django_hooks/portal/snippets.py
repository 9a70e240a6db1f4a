"""How a customer verifies what this site sends: one short program per language or library.

The secret is never written into a snippet: each reads it from ``WEBHOOK_SECRET``, so a snippet
can be copied into a ticket or a repository as it is. ``tests/portal/test_snippets.py`` runs the
Python and Node ones against a real signed webhook.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__: list[str] = []


@dataclass(frozen=True)
class Snippet:
    slug: str
    title: str
    language: str  # for the <code> class
    install: str
    code: str


PYTHON = '''\
import os
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])  # "whsec_..."


def handle(body: bytes, headers: dict) -> dict:
    """body: the raw request body, unparsed; headers: the request's headers."""
    try:
        return webhook.verify(body, headers)  # the parsed event: {"type", "timestamp", "data"}
    except WebhookVerificationError:
        raise PermissionError("not signed with our secret, or too old")
'''

SVIX = """\
import json
import os
from svix.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])  # "whsec_..."


def handle(body: bytes, headers: dict) -> dict:
    try:
        webhook.verify(body, headers)  # raises unless signed with the secret, and recent
        return json.loads(body)
    except WebhookVerificationError:
        raise PermissionError("not signed with our secret, or too old")
"""

DJANGO = """\
import os
from django.http import HttpResponse
from django_hooks.inbound import webhook_receiver


@webhook_receiver("standard", secret=os.environ["WEBHOOK_SECRET"])
def our_webhooks(request):
    event = request.webhook  # .id .type .payload, verified, replays and duplicates refused
    return HttpResponse(status=204)
"""

NODE = """\
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.WEBHOOK_SECRET); // "whsec_..."

// body: the raw request body as a string (e.g. express.raw()), headers: the request's headers.
export function handle(body, headers) {
  return webhook.verify(body, headers); // throws if unsigned, tampered with or too old
}
"""

NODE_CRYPTO = """\
const crypto = require("node:crypto");

const key = Buffer.from(process.env.WEBHOOK_SECRET.replace(/^whsec_/, ""), "base64");

// body: the raw request body as a string; headers: lower-case header names.
function verify(body, headers) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) throw new Error("too old");
  const expected = crypto.createHmac("sha256", key)
    .update(`${id}.${timestamp}.${body}`).digest();
  const signed = headers["webhook-signature"].split(" ").some((entry) => {
    const [version, signature] = entry.split(",");
    const given = Buffer.from(signature || "", "base64");
    return version === "v1" && given.length === expected.length
      && crypto.timingSafeEqual(given, expected);
  });
  if (!signed) throw new Error("bad signature");
  return JSON.parse(body);
}

module.exports = { verify };
"""

ANY = """\
key       = base64_decode(secret without its "whsec_" prefix)
content   = webhook-id + "." + webhook-timestamp + "." + raw body
expected  = base64(HMAC-SHA256(key, content))
accept if webhook-timestamp is within 5 minutes of now, and
          one space-separated entry of webhook-signature is "v1," + expected
          (compared in constant time; during a secret rotation there are several)
drop duplicates by webhook-id: it is the same on every retry
"""

SNIPPETS = [
    Snippet("python", "Python", "python", "pip install standardwebhooks", PYTHON),
    Snippet("node", "Node.js", "javascript", "npm install standardwebhooks", NODE),
    Snippet("node-crypto", "Node.js, no dependencies", "javascript", "", NODE_CRYPTO),
    Snippet("django", "Django (django-hooks)", "python", "pip install django-hooks", DJANGO),
    Snippet("svix", "Svix libraries (Python shown)", "python", "pip install svix", SVIX),
    Snippet("any", "Any language", "text", "", ANY),
]
