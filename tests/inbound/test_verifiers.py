"""Tests for the inbound signature verifiers; pure Python, no database needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import stripe
from django.http.request import HttpHeaders
from hypothesis import assume, given
from hypothesis import strategies as st
from slack_sdk.signature import Clock, SignatureVerifier
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

from django_hooks.core import signing
from django_hooks.core.errors import (
    InvalidSecret,
    InvalidSignature,
    MalformedHeader,
    MalformedPayload,
    MissingHeader,
    SignatureMismatch,
    TimestampOutOfTolerance,
)
from django_hooks.inbound.verifiers import (
    PROVIDERS,
    GitHubVerifier,
    HMACVerifier,
    ShopifyVerifier,
    SlackVerifier,
    StandardVerifier,
    StripeVerifier,
    Verified,
    Verifier,
    get_verifier,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TS = 1_700_000_000

# Published vectors.
# GitHub, "Validating webhook deliveries" > "Testing the webhook payload validation".
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
# Slack, "Verifying requests from Slack": a slash command captured at 1531420618.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
    b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
# Standard Webhooks: libraries/python/tests/test_webhooks.py test_sign_function (shared by all
# reference libraries) and libraries/go/webhook_asymmetric_test.go TestAsymmetricWebhookSign.
STANDARD_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TS = 1614265330
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_VECTORS = [
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    (
        signing.public_key_for("whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="),
        "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==",
    ),
]


def hmac_hex(secret: str, message: bytes, digestmod=hashlib.sha256) -> str:
    return hmac.new(secret.encode(), message, digestmod).hexdigest()


def hmac_b64(secret: str, message: bytes, digestmod=hashlib.sha256) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, digestmod).digest()).decode()


def get_ci(headers: Mapping[str, str], name: str) -> str:
    return next(v for k, v in headers.items() if k.lower() == name.lower()).strip()


# Each provider signs independently of the code under test: by hand, or with its own library.
# sign(body, secret, timestamp) -> (headers, the signature token those headers carry)
Signer = Callable[[bytes, str, int], tuple[dict[str, str], str]]


def sign_standard(body: bytes, secret: str, ts: int) -> tuple[dict[str, str], str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    token = base64.b64encode(hmac.new(key, f"msg_1.{ts}.".encode() + body, "sha256").digest())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts)}
    return headers | {"webhook-signature": f"v1,{token.decode()}"}, token.decode()


def sign_github(body: bytes, secret: str, ts: int) -> tuple[dict[str, str], str]:
    token = hmac_hex(secret, body)
    return {
        "X-Hub-Signature-256": f"sha256={token}",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "ping",
    }, token


def sign_stripe(body: bytes, secret: str, ts: int) -> tuple[dict[str, str], str]:
    token = hmac_hex(secret, f"{ts}.".encode() + body)
    return {"Stripe-Signature": f"t={ts},v1={token}"}, token


def sign_shopify(body: bytes, secret: str, ts: int) -> tuple[dict[str, str], str]:
    token = hmac_b64(secret, body)
    return {
        "X-Shopify-Hmac-Sha256": token,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2023-03-29T18:00:27.877041743Z",
        "X-Shopify-Shop-Domain": "example.myshopify.com",
    }, token


def sign_slack(body: bytes, secret: str, ts: int) -> tuple[dict[str, str], str]:
    token = hmac_hex(secret, f"v0:{ts}:".encode() + body)
    return {"X-Slack-Signature": f"v0={token}", "X-Slack-Request-Timestamp": str(ts)}, token


def sign_hmac_timestamped(body: bytes, secret: str, ts: int) -> tuple[dict[str, str], str]:
    token = hmac_b64(secret, f"{ts}.".encode() + body, hashlib.sha512)
    return {
        "X-Signature": f"sha512={token}",
        "X-Timestamp": str(ts),
        "X-Event-Id": "evt_42",
        "X-Event-Type": "thing.happened",
    }, token


def sign_hmac_plain(body: bytes, secret: str, ts: int) -> tuple[dict[str, str], str]:
    token = hmac_hex(secret, body)
    return {"X-Sig": token}, token


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def stripe_accepts(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    stripe.WebhookSignature.verify_header(
        body, get_ci(headers, "Stripe-Signature"), secret, tolerance=None
    )
    return True


def slack_accepts(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    return SignatureVerifier(secret, clock=FixedClock(TS)).is_valid(
        body,
        get_ci(headers, "X-Slack-Request-Timestamp"),
        get_ci(headers, "X-Slack-Signature"),
    )


@dataclass
class Case:
    name: str
    verifier: Verifier
    secret: str
    other: str  # well-formed, but not the secret that signed
    body: bytes
    sign: Signer
    required: tuple[str, ...]  # missing -> MissingHeader
    signed: tuple[str, ...]  # any change -> rejected
    malformed: tuple[str, ...]  # values of required[0] -> MalformedHeader
    id: str
    type: str
    timestamped: bool
    bad_body: bytes = b"not json"
    library_accepts: Callable[[bytes, Mapping[str, str], str], bool] | None = None

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        name="standard",
        verifier=StandardVerifier(),
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other="whsec_" + base64.b64encode(bytes(range(32))).decode(),
        body=b'{"type": "invoice.paid", "timestamp": "2023-11-14T22:13:20Z", "data": {"id": 1}}',
        sign=sign_standard,
        required=("webhook-signature", "webhook-id", "webhook-timestamp"),
        signed=("webhook-signature", "webhook-id", "webhook-timestamp"),
        malformed=("v1,!!!", "nonsense", "v1,"),
        id="msg_1",
        type="invoice.paid",
        timestamped=True,
    ),
    Case(
        name="github",
        verifier=GitHubVerifier(),
        secret=GITHUB_SECRET,
        other="another secret",
        body=b'{"zen": "Keep it logically awesome.", "hook_id": 1}',
        sign=sign_github,
        required=("X-Hub-Signature-256",),
        signed=("X-Hub-Signature-256",),
        malformed=(
            GITHUB_SIGNATURE.removeprefix("sha256="),
            "sha1=" + "a" * 40,
            "sha256=" + "z" * 64,
            "sha256=" + "a" * 63,
            "sha256=" + "a" * 62 + " a",
            "sha256=",
        ),
        id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        type="ping",
        timestamped=False,
    ),
    Case(
        name="stripe",
        verifier=StripeVerifier(),
        secret="whsec_test_secret",
        other="whsec_other_secret",
        body=b'{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}',
        sign=sign_stripe,
        required=("Stripe-Signature",),
        signed=("Stripe-Signature",),
        malformed=(
            "v1=" + "a" * 64,
            f"t={TS}",
            f"t={TS},v1=nothex",
            f"t={TS},v0=" + "a" * 64,
            "t=abc,v1=" + "a" * 64,
            "t=,v1=" + "a" * 64,
            f"t={TS},t={TS},v1=" + "a" * 64,
        ),
        id="evt_1",
        type="payment_intent.succeeded",
        timestamped=True,
        library_accepts=stripe_accepts,
    ),
    Case(
        name="shopify",
        verifier=ShopifyVerifier(),
        secret="shpss_test_secret",
        other="shpss_other_secret",
        body=b'{"id": 820982911946154508, "email": "jon@example.com"}',
        sign=sign_shopify,
        required=("X-Shopify-Hmac-Sha256",),
        signed=("X-Shopify-Hmac-Sha256",),
        malformed=("not base64!", base64.b64encode(bytes(16)).decode(), "a" * 64),
        id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        type="orders/create",
        timestamped=False,
    ),
    Case(
        name="slack",
        verifier=SlackVerifier(),
        secret=SLACK_SECRET,
        other="0123456789abcdef0123456789abcdef",
        body=(
            b'{"token": "x", "team_id": "T1", "type": "event_callback", "event_id": "Ev1",'
            b' "event": {"type": "app_mention", "text": "hi"}}'
        ),
        sign=sign_slack,
        required=("X-Slack-Signature", "X-Slack-Request-Timestamp"),
        signed=("X-Slack-Signature", "X-Slack-Request-Timestamp"),
        malformed=("v1=" + "a" * 64, "v0=" + "g" * 64, "a" * 64, "v0="),
        id="Ev1",
        type="app_mention",
        timestamped=True,
        bad_body=b"{not json",
        library_accepts=slack_accepts,
    ),
    Case(
        name="hmac-timestamped",
        verifier=HMACVerifier(
            "X-Signature",
            "sha512",
            "base64",
            "sha512=",
            timestamp_header="X-Timestamp",
            signed_template="{timestamp}.{body}",
            id_header="X-Event-Id",
            type_header="X-Event-Type",
        ),
        secret="hmac-secret",
        other="other-secret",
        body=b'{"thing": 1}',
        sign=sign_hmac_timestamped,
        required=("X-Signature", "X-Timestamp"),
        signed=("X-Signature", "X-Timestamp"),
        malformed=("sha256=" + base64.b64encode(bytes(64)).decode(), "sha512=!!!", "sha512="),
        id="evt_42",
        type="thing.happened",
        timestamped=True,
    ),
    Case(
        name="hmac-plain",
        verifier=HMACVerifier("X-Sig"),
        secret="plain-secret",
        other="other-secret",
        body=b'{"thing": 2}',
        sign=sign_hmac_plain,
        required=("X-Sig",),
        signed=("X-Sig",),
        malformed=("a" * 63, "a" * 128, "xyz"),
        id="",
        type="",
        timestamped=False,
    ),
]
TIMESTAMPED = [case for case in CASES if case.timestamped]
UNTIMESTAMPED = [case for case in CASES if not case.timestamped]


def assert_safe(exc: InvalidSignature, case: Case, body: bytes, secrets: list[str]) -> None:
    """The reason names neither a secret nor any signature the verifier could have expected."""
    for secret in secrets:
        _, expected = case.sign(body, secret, TS)
        assert expected not in str(exc)
        assert expected not in exc.reason
        assert secret not in str(exc)


# Published vectors


def test_github_published_vector():
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    verifier = GitHubVerifier()
    assert verifier.verify_signature(GITHUB_BODY, headers, [GITHUB_SECRET]) is None
    # "Hello, World!" is not JSON: MalformedPayload is only raised once the signature passed.
    with pytest.raises(MalformedPayload, match="not valid JSON"):
        verifier.verify(GITHUB_BODY, headers, [GITHUB_SECRET])
    with pytest.raises(SignatureMismatch):
        verifier.verify_signature(GITHUB_BODY + b" ", headers, [GITHUB_SECRET])


def test_github_vector_through_a_configured_hmac_verifier():
    verifier = HMACVerifier("X-Hub-Signature-256", "sha256", "hex", "sha256=")
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE}
    assert verifier.verify_signature(GITHUB_BODY, headers, [GITHUB_SECRET]) is None
    with pytest.raises(SignatureMismatch):
        verifier.verify_signature(GITHUB_BODY, headers, ["it's a secret to everybody"])


def test_slack_published_vector():
    headers = {"X-Slack-Signature": SLACK_SIGNATURE, "X-Slack-Request-Timestamp": str(SLACK_TS)}
    result = SlackVerifier().verify(SLACK_BODY, headers, [SLACK_SECRET], now=SLACK_TS + 5)
    assert result.id == ""
    assert result.type == "command"
    assert result.timestamp == SLACK_TS
    assert result.payload["command"] == "/webhook-collect"
    assert result.payload["user_name"] == "roadrunner"
    assert result.payload["text"] == ""  # blank fields are kept
    assert result.payload["response_url"].startswith("https://hooks.slack.com/commands/")
    with pytest.raises(TimestampOutOfTolerance):
        SlackVerifier().verify(SLACK_BODY, headers, [SLACK_SECRET], now=SLACK_TS + 301)
    with pytest.raises(SignatureMismatch):
        SlackVerifier().verify(SLACK_BODY + b"x", headers, [SLACK_SECRET], now=SLACK_TS)


@pytest.mark.parametrize(("secret", "signature"), STANDARD_VECTORS, ids=["v1", "v1a"])
@pytest.mark.parametrize("brand", ["webhook", "svix"])
def test_standard_published_vectors(secret: str, signature: str, brand: str):
    headers = {
        f"{brand}-id": STANDARD_MSG_ID,
        f"{brand}-timestamp": str(STANDARD_TS),
        f"{brand}-signature": signature,
    }
    result = StandardVerifier().verify(STANDARD_BODY, headers, [secret], now=STANDARD_TS)
    assert result == Verified(STANDARD_MSG_ID, "", STANDARD_TS, {"test": 2432232314})
    with pytest.raises(SignatureMismatch):
        StandardVerifier().verify(STANDARD_BODY + b" ", headers, [secret], now=STANDARD_TS)


# The providers' own libraries, both directions


def test_standardwebhooks_library_signs_we_verify_and_back():
    secret = signing.generate_secret()
    body = b'{"type": "user.created", "data": {}}'
    now = int(time.time())
    header = StandardWebhook(secret).sign(
        "msg_lib", datetime.fromtimestamp(now, UTC), body.decode()
    )
    headers = {"webhook-id": "msg_lib", "webhook-timestamp": str(now), "webhook-signature": header}
    assert StandardVerifier().verify(body, headers, [secret]).type == "user.created"

    ours = signing.Signer([secret]).header("msg_ours", now, body)
    headers = {"webhook-id": "msg_ours", "webhook-timestamp": str(now), "webhook-signature": ours}
    assert StandardVerifier().verify(body, headers, [secret]).id == "msg_ours"
    assert StandardWebhook(secret).verify(body, headers) == {"type": "user.created", "data": {}}


def test_svix_library_signs_we_verify_and_back():
    secret = signing.generate_secret()
    body = '{"type": "invoice.paid", "data": {"n": 1}}'
    now = int(time.time())
    header = SvixWebhook(secret).sign("msg_svix", datetime.fromtimestamp(now, UTC), body)
    headers = {"svix-id": "msg_svix", "svix-timestamp": str(now), "svix-signature": header}
    result = StandardVerifier().verify(body.encode(), headers, [secret])
    assert (result.id, result.type, result.timestamp) == ("msg_svix", "invoice.paid", now)

    ours = signing.Signer([secret]).header("msg_ours", now, body.encode())
    headers = {"svix-id": "msg_ours", "svix-timestamp": str(now), "svix-signature": ours}
    SvixWebhook(secret).verify(body, headers)  # raises if it disagrees
    assert StandardVerifier().verify(body.encode(), headers, [secret]).id == "msg_ours"


def test_slack_sdk_signs_we_verify_and_back():
    sdk = SignatureVerifier(SLACK_SECRET, clock=FixedClock(TS))
    body = b'{"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}'
    signature = sdk.generate_signature(timestamp=str(TS), body=body)
    assert signature is not None
    headers = {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(TS)}
    result = SlackVerifier().verify(body, headers, [SLACK_SECRET], now=TS)
    assert result.type == "url_verification"
    assert result.payload["challenge"].startswith("3eZbrw1")

    ours, _ = sign_slack(body, SLACK_SECRET, TS)
    SlackVerifier().verify(body, ours, [SLACK_SECRET], now=TS)
    assert sdk.is_valid_request(body, ours)
    tampered = body.replace(b"url_verification", b"event_callback")
    assert not sdk.is_valid_request(tampered, ours)
    with pytest.raises(SignatureMismatch):
        SlackVerifier().verify(tampered, ours, [SLACK_SECRET], now=TS)


def test_stripe_library_signs_we_verify_and_back():
    secret = "whsec_" + "x" * 32
    body = '{"id": "evt_lib", "object": "event", "type": "charge.succeeded"}'
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=TS)
    result = StripeVerifier().verify(body.encode(), {"Stripe-Signature": header}, [secret], now=TS)
    assert (result.id, result.type, result.timestamp) == ("evt_lib", "charge.succeeded", TS)

    ours, _ = sign_stripe(body.encode(), secret, TS)
    StripeVerifier().verify(body.encode(), ours, [secret], now=TS)
    assert stripe.WebhookSignature.verify_header(body, ours["Stripe-Signature"], secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, ours["Stripe-Signature"], "whsec_other")


def test_stripe_construct_event_accepts_what_we_accept_now():
    secret = "whsec_" + "y" * 32
    body = b'{"id": "evt_now", "object": "event", "type": "customer.created", "data": {}}'
    headers, _ = sign_stripe(body, secret, int(time.time()))
    assert StripeVerifier().verify(body, headers, [secret]).id == "evt_now"
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    assert event.id == "evt_now"


def test_stripe_several_v1_with_v0_and_unknown_keys():
    secret = "whsec_rotation"
    body = b'{"id": "evt_2", "type": "x"}'
    _, token = sign_stripe(body, secret, TS)
    header = f"t={TS},v1={'0' * 64},v1={token},v0={'f' * 64},scheme=unknown"
    assert (
        StripeVerifier().verify(body, {"Stripe-Signature": header}, [secret], now=TS).id == "evt_2"
    )
    assert stripe_accepts(body, {"Stripe-Signature": header}, secret)


def test_stripe_key_is_the_secret_text_not_its_base64_decoding():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"id": "evt_3"}'
    key = base64.b64decode(secret.removeprefix("whsec_"))
    token = hmac.new(key, f"{TS}.".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureMismatch):
        StripeVerifier().verify(body, {"Stripe-Signature": f"t={TS},v1={token}"}, [secret], now=TS)


# Every provider: the same contract


@pytest.mark.parametrize("case", CASES, ids=str)
def test_accepts_a_signed_delivery(case: Case):
    headers, _ = case.sign(case.body, case.secret, TS)
    result = case.verifier.verify(case.body, headers, [case.secret], now=TS)
    timestamp = TS if case.timestamped else None
    assert result == Verified(case.id, case.type, timestamp, json.loads(case.body))


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize(
    "recase", [str.lower, str.upper, str.title], ids=["lower", "upper", "title"]
)
def test_header_names_match_in_any_case(case: Case, recase: Callable[[str], str]):
    headers, _ = case.sign(case.body, case.secret, TS)
    headers = {recase(name): value for name, value in headers.items()}
    result = case.verifier.verify(case.body, headers, [case.secret], now=TS)
    assert (result.id, result.type) == (case.id, case.type)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_django_request_headers_work(case: Case):
    headers, _ = case.sign(case.body, case.secret, TS)
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    result = case.verifier.verify(case.body, HttpHeaders(meta), [case.secret], now=TS)
    assert (result.id, result.type) == (case.id, case.type)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rejects_the_wrong_secret(case: Case):
    headers, _ = case.sign(case.body, case.secret, TS)
    with pytest.raises(SignatureMismatch) as info:
        case.verifier.verify(case.body, headers, [case.other], now=TS)
    assert info.value.status_code == 401
    assert_safe(info.value, case, case.body, [case.other])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rejects_a_tampered_body(case: Case):
    headers, _ = case.sign(case.body, case.secret, TS)
    tampered = case.body.replace(b"}", b', "admin": true}', 1)
    with pytest.raises(SignatureMismatch) as info:
        case.verifier.verify(tampered, headers, [case.secret], now=TS)
    assert_safe(info.value, case, tampered, [case.secret])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_signature_is_checked_before_the_body_is_parsed(case: Case):
    headers, _ = case.sign(case.body, case.secret, TS)
    with pytest.raises(SignatureMismatch):
        case.verifier.verify(case.bad_body, headers, [case.secret], now=TS)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize(
    "bad", [None, b'{"a": "\xff"}', b'{"a":' * 100_000], ids=["text", "not-utf8", "too-deep"]
)
def test_valid_signature_over_a_body_that_is_not_json(case: Case, bad: bytes | None):
    body = case.bad_body if bad is None else bad
    headers, _ = case.sign(body, case.secret, TS)
    with pytest.raises(MalformedPayload, match="not valid JSON") as info:
        case.verifier.verify(body, headers, [case.secret], now=TS)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("case", "name"), [(case, name) for case in CASES for name in case.required], ids=str
)
def test_missing_header(case: Case, name: str):
    headers, _ = case.sign(case.body, case.secret, TS)
    del headers[name]
    with pytest.raises(MissingHeader) as info:
        case.verifier.verify(case.body, headers, [case.secret], now=TS)
    assert info.value.status_code == 400
    assert_safe(info.value, case, case.body, [case.secret])


@pytest.mark.parametrize(
    ("case", "name"), [(case, name) for case in CASES for name in case.required], ids=str
)
def test_empty_header_counts_as_missing(case: Case, name: str):
    headers, _ = case.sign(case.body, case.secret, TS)
    headers[name] = "  "
    with pytest.raises(MissingHeader):
        case.verifier.verify(case.body, headers, [case.secret], now=TS)


@pytest.mark.parametrize(
    ("case", "value"), [(case, value) for case in CASES for value in case.malformed], ids=str
)
def test_malformed_signature_header(case: Case, value: str):
    headers, _ = case.sign(case.body, case.secret, TS)
    headers[case.required[0]] = value
    with pytest.raises(MalformedHeader) as info:
        case.verifier.verify(case.body, headers, [case.secret], now=TS)
    assert info.value.status_code == 400
    assert_safe(info.value, case, case.body, [case.secret])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rotation_accepts_the_old_secret(case: Case):
    headers, _ = case.sign(case.body, case.secret, TS)
    result = case.verifier.verify(case.body, headers, [case.other, case.secret], now=TS)
    assert result.id == case.id


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rotation_rejects_when_no_secret_matches(case: Case):
    third = case.other[:-1] + ("A" if case.other[-1] != "A" else "B")
    headers, _ = case.sign(case.body, case.secret, TS)
    with pytest.raises(SignatureMismatch) as info:
        case.verifier.verify(case.body, headers, [case.other, third], now=TS)
    assert_safe(info.value, case, case.body, [case.other, third])


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("secrets", [[], [""], ()], ids=["empty-list", "empty-string", "tuple"])
def test_no_usable_secret_is_a_site_error(case: Case, secrets):
    headers, _ = case.sign(case.body, case.secret, TS)
    with pytest.raises(InvalidSecret):
        case.verifier.verify(case.body, headers, secrets, now=TS)


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_within_tolerance_is_accepted(case: Case, offset: int):
    headers, _ = case.sign(case.body, case.secret, TS)
    assert case.verifier.verify(case.body, headers, [case.secret], now=TS + offset).timestamp == TS


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
@pytest.mark.parametrize(
    "offset", [-301, 301, -86400, 86400], ids=["future", "stale", "day-ahead", "day-old"]
)
def test_timestamp_outside_tolerance_is_rejected(case: Case, offset: int):
    headers, _ = case.sign(case.body, case.secret, TS)
    with pytest.raises(TimestampOutOfTolerance) as info:
        case.verifier.verify(case.body, headers, [case.secret], now=TS + offset)
    assert info.value.status_code == 401
    assert_safe(info.value, case, case.body, [case.secret])


@pytest.mark.parametrize("name", ["standard", "stripe", "slack"])
def test_tolerance_is_configurable(name: str):
    case = next(case for case in CASES if case.name == name)
    headers, _ = case.sign(case.body, case.secret, TS)
    verifier = get_verifier(name, tolerance=10)
    assert verifier.verify(case.body, headers, [case.secret], now=TS + 10).timestamp == TS
    with pytest.raises(TimestampOutOfTolerance):
        verifier.verify(case.body, headers, [case.secret], now=TS + 11)


@pytest.mark.parametrize("case", UNTIMESTAMPED, ids=str)
def test_schemes_without_a_timestamp_ignore_the_clock(case: Case):
    headers, _ = case.sign(case.body, case.secret, TS)
    result = case.verifier.verify(case.body, headers, [case.secret], now=TS + 10**9)
    assert result.timestamp is None


# Provider details


def test_github_legacy_sha1_header_alone_is_not_accepted():
    sha1 = hmac_hex(GITHUB_SECRET, b"{}", hashlib.sha1)
    with pytest.raises(MissingHeader, match="SHA-1 X-Hub-Signature is not accepted") as info:
        GitHubVerifier().verify(b"{}", {"X-Hub-Signature": f"sha1={sha1}"}, [GITHUB_SECRET])
    assert sha1 not in str(info.value)


def test_github_form_encoded_delivery():
    event = {"zen": "Design for failure.", "hook_id": 7}
    body = urlencode({"payload": json.dumps(event)}).encode()
    headers, _ = sign_github(body, GITHUB_SECRET, TS)
    assert GitHubVerifier().verify(body, headers, [GITHUB_SECRET]).payload == event


def test_github_without_delivery_headers_has_empty_id_and_type():
    body = b'{"action": "opened"}'
    headers = {"X-Hub-Signature-256": "sha256=" + hmac_hex(GITHUB_SECRET, body)}
    assert GitHubVerifier().verify(body, headers, [GITHUB_SECRET]) == Verified(
        "", "", None, {"action": "opened"}
    )


def test_shopify_signature_must_be_strict_base64():
    body = b"{}"
    token = hmac_b64("shpss_x", body)
    for value in (token[:10] + "*" + token[10:], token.rstrip("=") + "!", token + "\n" + "AAAA"):
        with pytest.raises(MalformedHeader):
            ShopifyVerifier().verify(body, {"X-Shopify-Hmac-Sha256": value}, ["shpss_x"])


def test_shopify_id_falls_back_to_the_event_id():
    case = next(case for case in CASES if case.name == "shopify")
    headers, _ = case.sign(case.body, case.secret, TS)
    del headers["X-Shopify-Webhook-Id"]
    result = ShopifyVerifier().verify(case.body, headers, [case.secret])
    assert result.id == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_shopify_events_headers_without_the_x_prefix():
    body = b'{"topic": "Product", "action": "update"}'
    headers = {
        "Shopify-Hmac-Sha256": hmac_b64("shpss_events", body),
        "Shopify-Topic": "products/update",
        "Shopify-Webhook-Id": "whk_1",
    }
    result = ShopifyVerifier().verify(body, headers, ["shpss_events"])
    assert (result.id, result.type) == ("whk_1", "products/update")


def test_slack_interactive_payload_is_decoded():
    payload = {"type": "block_actions", "trigger_id": "1.2.3", "actions": [{"action_id": "a"}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers, _ = sign_slack(body, SLACK_SECRET, TS)
    result = SlackVerifier().verify(body, headers, [SLACK_SECRET], now=TS)
    assert result == Verified("", "block_actions", TS, {"payload": payload})


def test_slack_interactive_payload_that_is_not_json():
    body = b"payload=" + quote("{oops").encode()
    headers, _ = sign_slack(body, SLACK_SECRET, TS)
    with pytest.raises(MalformedPayload, match="payload field is not valid JSON"):
        SlackVerifier().verify(body, headers, [SLACK_SECRET], now=TS)


@pytest.mark.parametrize(
    ("body", "expected_id", "expected_type"),
    [
        (b'{"type": "url_verification", "challenge": "c"}', "", "url_verification"),
        (b'{"type": "event_callback", "event_id": "Ev2", "event": {}}', "Ev2", "event_callback"),
        (
            b'{"type": "event_callback", "event_id": "Ev3", "event": {"type": "message"}}',
            "Ev3",
            "message",
        ),
        (b'{"type": "app_rate_limited"}', "", "app_rate_limited"),
        (b"[1, 2]", "", ""),
    ],
)
def test_slack_events_api_id_and_type(body: bytes, expected_id: str, expected_type: str):
    headers, _ = sign_slack(body, SLACK_SECRET, TS)
    result = SlackVerifier().verify(body, headers, [SLACK_SECRET], now=TS)
    assert (result.id, result.type) == (expected_id, expected_type)


def test_slack_form_without_command_has_no_type():
    body = b"token=x&team_id=T1"
    headers, _ = sign_slack(body, SLACK_SECRET, TS)
    result = SlackVerifier().verify(body, headers, [SLACK_SECRET], now=TS)
    assert result == Verified("", "", TS, {"token": "x", "team_id": "T1"})


def test_standard_event_without_type_and_v1a_rotation():
    signing_key, public_key = signing.generate_signing_key()
    body = b'{"data": {}}'
    header = signing.Signer([signing_key]).header("msg_2", TS, body)
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(TS), "webhook-signature": header}
    result = StandardVerifier().verify(body, headers, [CASES[0].secret, public_key], now=TS)
    assert result == Verified("msg_2", "", TS, {"data": {}})


def test_standard_message_id_that_is_not_text_is_malformed():
    headers, _ = sign_standard(b"{}", CASES[0].secret, TS)
    headers["webhook-id"] = "msg_\udc80"
    with pytest.raises(MalformedHeader):
        StandardVerifier().verify(b"{}", headers, [CASES[0].secret], now=TS)


# HMACVerifier


@pytest.mark.parametrize(
    ("algorithm", "digestmod"),
    [("sha1", hashlib.sha1), ("sha256", hashlib.sha256), ("sha512", hashlib.sha512)],
)
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_algorithms_and_encodings(algorithm: str, digestmod, encoding: str):
    body = b'{"ok": true}'
    digest = hmac.new(b"k3y", body, digestmod).digest()
    token = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    verifier = HMACVerifier("X-Sig", algorithm, encoding, "v=")
    assert verifier.verify(body, {"x-sig": f"v={token}"}, ["k3y"]).payload == {"ok": True}
    with pytest.raises(SignatureMismatch):
        verifier.verify(body, {"x-sig": f"v={token}"}, ["k3Y"])
    with pytest.raises(MalformedHeader):  # a digest of another algorithm's size
        other = hashlib.md5(body).digest()  # noqa: S324 - just 16 bytes of the wrong length
        wrong = other.hex() if encoding == "hex" else base64.b64encode(other).decode()
        verifier.verify(body, {"x-sig": f"v={wrong}"}, ["k3y"])


@pytest.mark.parametrize("separator", [",", " ", ", "])
def test_hmac_several_signatures_in_one_header(separator: str):
    body = b"{}"
    good = hmac_hex("s", body)
    value = separator.join(["sha256=" + "0" * 64, "garbage", "sha256=" + good])
    verifier = HMACVerifier("X-Sig", prefix="sha256=")
    assert verifier.verify(body, {"X-Sig": value}, ["s"]).payload == {}


def test_hmac_signature_without_the_prefix_is_malformed():
    body = b"{}"
    with pytest.raises(MalformedHeader):
        HMACVerifier("X-Sig", prefix="sha256=").verify(body, {"X-Sig": hmac_hex("s", body)}, ["s"])


def test_hmac_template_substitutes_bytes_once():
    # The body itself contains "{timestamp}" and "{body}": they must stay literal.
    body = b'{"note": "{timestamp} and {body}", "raw": "\xc3\xa9"}'
    verifier = HMACVerifier(
        "X-Sig", timestamp_header="X-Ts", signed_template="v1:{timestamp}:{body}"
    )
    token = hmac_hex("s", f"v1:{TS}:".encode() + body)
    result = verifier.verify(body, {"X-Sig": token, "X-Ts": str(TS)}, ["s"], now=TS)
    assert result.timestamp == TS
    assert result.payload["raw"] == "é"
    with pytest.raises(MissingHeader, match="X-Ts"):
        verifier.verify(body, {"X-Sig": token}, ["s"], now=TS)
    with pytest.raises(TimestampOutOfTolerance):
        verifier.verify(body, {"X-Sig": token, "X-Ts": str(TS)}, ["s"], now=TS + 301)
    with pytest.raises(SignatureMismatch):  # the timestamp is part of what is signed
        verifier.verify(body, {"X-Sig": token, "X-Ts": str(TS + 1)}, ["s"], now=TS)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("X-Sig", "md5"), {}, "algorithm"),
        (("X-Sig", "SHA256"), {}, "algorithm"),
        (("X-Sig", "sha256", "base32"), {}, "encoding"),
        (("X-Sig", "sha256", "hex", "a,b"), {}, "prefix"),
        (("X-Sig", "sha256", "hex", "a b"), {}, "prefix"),
        (("",), {}, "header"),
        (("X-Sig",), {"signed_template": "{timestamp}"}, "{body}"),
        (("X-Sig",), {"signed_template": "{body}{body}"}, "{body}"),
        (("X-Sig",), {"timestamp_header": "X-Ts"}, "{timestamp}"),
        (("X-Sig",), {"signed_template": "{timestamp}.{body}"}, "timestamp_header"),
        (("X-Sig",), {"tolerance": -1}, "tolerance"),
    ],
)
def test_hmac_bad_construction(args, kwargs, message: str):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        HMACVerifier(*args, **kwargs)


# Registry


def test_providers_and_get_verifier():
    assert set(PROVIDERS) == {"standard", "github", "stripe", "shopify", "slack"}
    for name, cls in PROVIDERS.items():
        verifier = get_verifier(name, tolerance=42)
        assert type(verifier) is cls
        assert verifier.provider == name
        assert verifier.tolerance == 42
    instance = HMACVerifier("X-Sig")
    assert get_verifier(instance) is instance
    assert instance.provider == "hmac"


@pytest.mark.parametrize("name", ["paypal", "GitHub", "", "hmac"])
def test_get_verifier_unknown_name_lists_the_known_ones(name: str):
    with pytest.raises(ValueError, match="github, shopify, slack, standard, stripe"):
        get_verifier(name)


def test_verified_is_frozen():
    verified = Verified("id", "type", None, {})
    with pytest.raises(FrozenInstanceError):
        verified.id = "other"  # type: ignore[misc]


def test_verifiers_import_no_django():
    code = (
        "import sys, django_hooks.inbound.verifiers\n"
        "bad = sorted(n for n in sys.modules if n == 'django' or n.startswith('django.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Properties: whatever arrives, only InvalidSignature comes out, and only signed deliveries pass

KNOWN_HEADERS = sorted(
    {name for case in CASES for name in case.sign(case.body, case.secret, TS)[0]}
    | {"svix-id", "svix-timestamp", "svix-signature", "X-Hub-Signature", "Shopify-Hmac-Sha256"}
)
header_names = st.one_of(
    st.sampled_from(KNOWN_HEADERS).flatmap(
        lambda name: st.sampled_from([name, name.lower(), name.upper()])
    ),
    st.text(max_size=20),
)
header_values = st.one_of(
    st.text(st.characters(exclude_categories=[])),  # surrogates included
    st.text(alphabet=["\udc80", "\x00", "é", "\u2028", "１", "a", " "], min_size=1, max_size=5),
    st.text(alphabet="0123456789abcdefABCDEF=,.tv+/ \t", max_size=140),
    st.tuples(
        st.sampled_from(["sha256=", "sha1=", "sha512=", "v0=", "v1,", "v1a,", "t=", f"t={TS},v1="]),
        st.text(alphabet="0123456789abcdef+/=", max_size=140),
    ).map("".join),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
bodies = st.one_of(st.binary(max_size=300), st.sampled_from([case.body for case in CASES]))


@pytest.mark.parametrize("case", CASES, ids=str)
@given(headers=st.dictionaries(header_names, header_values, max_size=8), body=bodies)
def test_random_requests_are_rejected_cleanly(case: Case, headers: dict[str, str], body: bytes):
    with pytest.raises(InvalidSignature):
        case.verifier.verify(body, headers, [case.secret, case.other], now=TS)


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data())
def test_mutated_deliveries(case: Case, data: st.DataObject):
    headers, _ = case.sign(case.body, case.secret, TS)
    body = case.body
    name = data.draw(st.sampled_from(sorted(headers)))
    op = data.draw(st.sampled_from(["body", "replace", "delete", "append", "recase"]))
    if op == "body":
        body = data.draw(st.binary(max_size=300))
        assume(body != case.body)
        must = "fail"
    elif op == "replace":
        value = data.draw(header_values)
        assume(value.strip() != headers[name].strip())
        headers[name] = value
        must = "fail" if name in case.signed else "pass"
    elif op == "delete":
        del headers[name]
        must = "fail" if name in case.signed else "pass"
    elif op == "append":
        # The valid signature is still there, so either outcome can be right.
        headers[name] += data.draw(header_values)
        must = "either"
    else:
        headers = {
            data.draw(st.sampled_from([k.lower(), k.upper(), k.swapcase()])): v
            for k, v in headers.items()
        }
        must = "pass"

    try:
        result = case.verifier.verify(body, headers, [case.other, case.secret], now=TS)
    except InvalidSignature:
        assert must != "pass"
        return
    assert must != "fail"
    assert result.payload == json.loads(case.body)
    if case.library_accepts is not None:
        assert case.library_accepts(body, headers, case.secret)
