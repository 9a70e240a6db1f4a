"""Inbound forgery: random and mutated requests through ``@webhook_receiver`` for every verifier.

Properties (hypothesis): never a 500 or an exception, never the handler run without a valid,
fresh signature, and no answer quotes a secret or the signature the receiver expected. The
verifier classes themselves are fuzzed in ``tests/inbound/test_verifiers.py``; this drives the
whole view, the way a request from the internet arrives.
"""

from __future__ import annotations

import ast
import base64
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rest_framework.views import APIView

from django_hooks.inbound import webhook_receiver
from django_hooks.inbound.drf import WebhookSignatureAuthentication
from tests.inbound.test_verifiers import CASES, Case

EXAMPLES = 150  # per property and verifier
PROPERTY = settings(
    max_examples=EXAMPLES,
    database=None,  # no .hypothesis/ directory in the tree
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ROOT = Path(__file__).resolve().parents[2]

factory = RequestFactory()


class Handler:
    """Counts the runs of a view: any run on a forged request fails the property."""

    def __init__(self) -> None:
        self.runs = 0


def receiver_for(case: Case) -> tuple[Any, Handler]:
    handler = Handler()

    def view(request: Any) -> HttpResponse:
        handler.runs += 1
        return HttpResponse(status=204)

    view.__qualname__ = f"forgery_{case.name}"
    # store=False: what is under test happens before anything is stored, and needs no database.
    receiver = webhook_receiver(case.verifier, secret=[case.other, case.secret], store=False)
    return receiver(view), handler


VIEWS = {case.name: receiver_for(case) for case in CASES}


def post(view: Any, body: bytes, headers: dict[str, str]) -> HttpResponse:
    # The test client's own body framing must stay truthful: a real server sets these.
    headers = {
        k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-type")
    }
    request = factory.post("/hook", data=body, content_type="application/json", headers=headers)
    return view(request)


def signed(case: Case, body: bytes, timestamp: int | None = None) -> tuple[dict[str, str], str]:
    return case.sign(body, case.secret, int(time.time()) if timestamp is None else timestamp)


def assert_refused_safely(case: Case, response: HttpResponse, body: bytes, headers: dict) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content)
    answer = response.content.decode()
    assert json.loads(answer)["error"]
    assert case.secret not in answer and case.other not in answer
    # Nor the signature that would have been accepted, for any timestamp the request claims.
    now = int(time.time())
    claimed = {now, now - 1}
    for value in headers.values():
        digits = "".join(ch for ch in str(value) if ch.isdigit())
        if 8 <= len(digits) <= 12:
            claimed.add(int(digits))
    for ts in claimed:
        for secret in (case.secret, case.other):
            assert case.sign(body, secret, ts)[1] not in answer


header_names = st.one_of(
    st.sampled_from(
        [
            *sorted({name for case in CASES for name in signed(case, case.body)[0]}),
            *["svix-id", "svix-timestamp", "svix-signature", "X-Hub-Signature", "Content-Length"],
        ]
    ).flatmap(lambda name: st.sampled_from([name, name.lower(), name.upper()])),
    st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), max_size=20
    ),
)
header_values = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789abcdefABCDEF=,.tv+/ \t", max_size=140),
    st.tuples(
        st.sampled_from(["sha256=", "sha1=", "v0=", "v1,", "v1a,", "t=", "sha512="]),
        st.text(alphabet="0123456789abcdef+/=", max_size=140),
    ).map("".join),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
bodies = st.one_of(
    st.binary(max_size=400),
    st.sampled_from([case.body for case in CASES]),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@pytest.mark.parametrize("case", CASES, ids=str)
@PROPERTY
@given(headers=st.dictionaries(header_names, header_values, max_size=8), body=bodies)
def test_random_requests_are_refused(case: Case, headers: dict[str, str], body: bytes) -> None:
    view, handler = VIEWS[case.name]
    runs = handler.runs
    response = post(view, body, headers)
    assert handler.runs == runs, "the handler ran on a forged request"
    assert_refused_safely(case, response, body, headers)


@pytest.mark.parametrize("case", CASES, ids=str)
@PROPERTY
@given(data=st.data())
def test_mutated_signed_requests_are_refused(case: Case, data: st.DataObject) -> None:
    view, handler = VIEWS[case.name]
    headers, _ = signed(case, case.body)
    body = case.body
    op = data.draw(st.sampled_from(["body", "replace", "delete", "resign-other-secret"]))
    if op == "body":
        body = data.draw(bodies)
        assume(body != case.body)
    elif op == "resign-other-secret":
        secret = data.draw(st.text(min_size=1, max_size=40))
        assume(secret not in (case.secret, case.other))
        try:
            headers, _ = case.sign(case.body, secret, int(time.time()))
        except ValueError:  # not a valid key for this scheme (e.g. whsec_ base64)
            assume(False)
    else:
        name = data.draw(st.sampled_from(sorted(case.signed)))
        key = next(k for k in headers if k.lower() == name.lower())
        if op == "delete":
            del headers[key]
        else:
            value = data.draw(header_values)
            assume(value.strip() != headers[key].strip())
            headers[key] = value
    runs = handler.runs
    response = post(view, body, headers)
    assert handler.runs == runs, f"the handler ran after {op}"
    assert_refused_safely(case, response, body, headers)


TIMESTAMPED = [case for case in CASES if case.timestamped]


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
@PROPERTY
@given(offset=st.integers(min_value=-(10**7), max_value=10**7))
def test_signed_timestamps_outside_the_tolerance_are_refused(case: Case, offset: int) -> None:
    assume(abs(abs(offset) - case.verifier.tolerance) > 5)  # clear of the edge
    view, handler = VIEWS[case.name]
    headers, _ = signed(case, case.body, int(time.time()) + offset)
    runs = handler.runs
    response = post(view, case.body, headers)
    if abs(offset) < case.verifier.tolerance:
        assert response.status_code == 204 and handler.runs == runs + 1
    else:
        assert handler.runs == runs
        assert_refused_safely(case, response, case.body, headers)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_valid_request_runs_the_handler(case: Case) -> None:
    # The properties above would hold for a view that refuses everything; this one would not.
    view, handler = VIEWS[case.name]
    runs = handler.runs
    headers, _ = signed(case, case.body)
    assert post(view, case.body, headers).status_code == 204
    assert handler.runs == runs + 1


# -- hostile bodies, validly signed ---------------------------------------------------------------

NESTED_ARRAYS = b"[" * 200_000 + b"]" * 200_000
NESTED_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
# (name, body, status, status for Slack, which reads a body not starting with "{" as a form)
HOSTILE_BODIES = [
    ("nested arrays", NESTED_ARRAYS, 400, 204),
    ("nested objects", NESTED_OBJECTS, 400, 400),
    ("invalid UTF-8", b'{"name": "caf\xe9 \xff"}', 400, 400),
    ("lone surrogate escape", b'{"name": "\\ud800"}', 204, 204),  # valid JSON
    ("UTF-16", '{"a": 1}'.encode("utf-16"), 400, 400),
    ("5000-digit number", b'{"n": ' + b"7" * 5000 + b"}", 400, 400),
    ("NUL escape", b'{"a": "\\u0000"}', 204, 204),
    ("truncated", b'{"a": [1, 2', 400, 400),
    ("empty", b"", 400, 204),
    ("over the 1 MiB limit", b'{"a": "' + b"x" * (1024 * 1024) + b'"}', 413, 413),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize(
    ("name", "body", "status", "slack_status"), HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES]
)
def test_hostile_bodies_are_a_4xx_not_a_crash(case: Case, name, body, status, slack_status):
    if case.name == "slack":
        status = slack_status
    view, handler = VIEWS[case.name]
    runs = handler.runs
    headers, _ = signed(case, body)
    response = post(view, body, headers)
    assert response.status_code == status, response.content[:300]
    assert handler.runs == runs + (1 if status == 204 else 0)


@pytest.mark.parametrize(("declared", "status"), [(str(10**12), 413), ("12abc", 400), ("-1", 400)])
def test_a_lying_content_length_is_refused_before_reading(declared: str, status: int) -> None:
    view, handler = VIEWS["standard"]
    runs = handler.runs
    request = factory.post("/hook", data=b"{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = declared
    assert view(request).status_code == status
    assert handler.runs == runs


@pytest.mark.parametrize("method", ["get", "put", "delete", "options", "head"])
def test_other_methods_are_405(method: str) -> None:
    view, _ = VIEWS["standard"]
    response = view(getattr(factory, method)("/hook"))
    assert response.status_code == 405 and response["Allow"] == "POST"


# -- DRF authentication ----------------------------------------------------------------------------


class SignedAPIView(APIView):
    permission_classes: list = []
    runs = 0

    def post(self, request: Any) -> HttpResponse:
        SignedAPIView.runs += 1
        return HttpResponse(status=204)


@pytest.mark.parametrize("case", CASES, ids=str)
@PROPERTY
@given(headers=st.dictionaries(header_names, header_values, max_size=8), body=bodies)
def test_drf_authentication_refuses_random_requests(case: Case, headers, body) -> None:
    auth = type(
        "Auth",
        (WebhookSignatureAuthentication,),
        {"provider": case.verifier, "secret": [case.secret]},
    )
    view = SignedAPIView.as_view(authentication_classes=[auth])
    runs = SignedAPIView.runs
    response = post(view, body, headers)
    response.render()
    # 401; or 406 when the random Accept header rules out every renderer, before authenticating.
    assert response.status_code in (401, 406), response.content
    assert SignedAPIView.runs == runs
    assert case.secret not in response.content.decode()


# -- constant-time comparison ---------------------------------------------------------------------


FORGED_SECRET = "whsec_" + base64.b64encode(bytes([7]) * 32).decode()  # a key for every scheme


@pytest.mark.parametrize("case", CASES, ids=str)
def test_signatures_are_compared_with_compare_digest(case: Case, monkeypatch) -> None:
    calls = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    view, _ = VIEWS[case.name]
    headers, _ = signed(case, case.body)
    forged, _ = case.sign(case.body, FORGED_SECRET, int(time.time()))
    assert post(view, case.body, forged).status_code >= 400
    assert calls, "a forged signature was rejected without hmac.compare_digest"
    calls.clear()
    assert post(view, case.body, headers).status_code == 204
    assert calls


SIGNATURE_WORDS = ("sig", "digest", "mac", "expected", "token", "secret")
VERIFYING_MODULES = ["django_hooks/core/signing.py", "django_hooks/inbound/verifiers.py"]


@pytest.mark.parametrize("path", VERIFYING_MODULES)
def test_no_signature_is_compared_with_equality_operators(path: str) -> None:
    """A source check: ``==`` / ``!=`` / ``in`` on anything named like a signature or secret."""
    tree = ast.parse((ROOT / path).read_text())
    offenders = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Call) and getattr(o.func, "id", "") == "len" for o in operands):
            continue  # lengths are public
        for operand in operands:
            names = {n.id for n in ast.walk(operand) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(operand) if isinstance(n, ast.Attribute)
            }
            if any(word in name.lower() for name in names for word in SIGNATURE_WORDS):
                offenders.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []
