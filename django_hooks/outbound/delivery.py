"""Attempting deliveries: claim a batch, POST each, record every attempt in bulk.

A worker claims deliveries with a lease (``locked_until`` + ``claim_token``) in one conditional
UPDATE, so two jobs for the same delivery never both send it, and a delivery whose worker died
becomes claimable again when the lease runs out (``hooks_sweep`` re-enqueues it). Results are
written only where the claim still holds, so a late worker cannot undo a success.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from django_hooks import signals
from django_hooks.conf import hooks_settings
from django_hooks.core.payload import encode_body
from django_hooks.core.retry import Outcome, classify, next_retry_delay, parse_retry_after
from django_hooks.core.signing import Signer
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint
from django_hooks.outbound.client import transport
from django_hooks.outbound.transport import HTTPResult, Transport

logger = logging.getLogger("django_hooks")

T = TypeVar("T")

RESULT_FIELDS = [
    "status", "attempts", "next_attempt_at", "locked_until", "claim_token",
    "last_status_code", "last_error", "completed_at",
]  # fmt: skip
LEASE_MARGIN = 30  # seconds beyond the worst case of a batch
BATCH_WORK_LIMIT = 300  # seconds of attempts a job starts; the rest of its batch waits for later
WRITE_RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)  # seconds between tries to record a batch's results


def attempt_seconds() -> int:
    """The longest one attempt can take: the total deadline plus signing and bookkeeping."""
    return int(hooks_settings.TIMEOUT) + 2


def lease_seconds(batch_size: int) -> int:
    """How long a worker may hold a batch: every attempt it starts timing out, plus a margin.

    A job starts attempts for at most ``BATCH_WORK_LIMIT`` seconds, so a dead worker's batch is
    claimable again within about five minutes whatever ``BATCH_SIZE`` is.
    """
    most = max(1, BATCH_WORK_LIMIT // attempt_seconds())
    return min(batch_size, most) * attempt_seconds() + LEASE_MARGIN


@dataclass
class BatchResult:
    """What a batch did; ``retries`` lists (delivery id, when) for the caller to schedule."""

    attempted: int = 0
    succeeded: list[Delivery] = field(default_factory=list)
    failed: list[Delivery] = field(default_factory=list)
    retries: list[tuple[int, dt.datetime]] = field(default_factory=list)


def claim(delivery_ids: Iterable[int], *, now: dt.datetime) -> tuple[uuid.UUID, list[Delivery]]:
    """Lease the deliveries that are pending, due and not held by another worker."""
    ids = list(delivery_ids)
    token = uuid.uuid4()
    # Only this row's own columns in the WHERE: PostgreSQL re-checks them on concurrent updates.
    claimed = (
        Delivery.objects.filter(
            pk__in=ids, status=Delivery.Status.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + dt.timedelta(seconds=lease_seconds(len(ids))), claim_token=token)
    )
    if not claimed:
        return token, []
    deliveries = list(
        Delivery.objects.filter(claim_token=token)
        .select_related("event", "endpoint")
        .order_by("pk")
    )
    return token, deliveries


def deliver_batch(delivery_ids: Iterable[int]) -> BatchResult:
    """Attempt each given delivery that is still due; return what happened."""
    now = timezone.now()
    ids = list(delivery_ids)
    # Nothing is sent yet: a claim that fails on a dead connection is simply made again.
    token, deliveries = with_db_retries(
        lambda: claim(ids, now=now), what=f"claim {len(ids)} webhook deliveries"
    )
    result = BatchResult()
    if not deliveries:
        return result

    schedule = hooks_settings.RETRY_SCHEDULE
    store_limit = hooks_settings.RESPONSE_STORE_LIMIT
    client = transport()
    # An attempt starts only if it can finish with half the margin left to write the results.
    lease_deadline = (
        time.monotonic() + lease_seconds(len(deliveries)) - attempt_seconds() - LEASE_MARGIN / 2
    )
    bodies: dict[str, bytes] = {}
    signers: dict[int, Signer] = {}
    gone: set[int] = set()
    healthy: set[int] = set()
    failing: set[int] = set()
    attempts: list[DeliveryAttempt] = []
    skipped: list[Delivery] = []

    for delivery in deliveries:
        endpoint = delivery.endpoint
        if not endpoint.is_receiving or endpoint.pk in gone or time.monotonic() > lease_deadline:
            # Not now: the delivery stays pending and is picked up again later.
            delivery.locked_until = None
            delivery.claim_token = None
            skipped.append(delivery)
            continue
        headers, response = send_attempt(delivery, client, bodies, signers, now)
        attempted_at = timezone.now()
        delivery.attempts += 1
        result.attempted += 1
        # A status line followed by a broken body (reset, timeout, bad chunking) proves nothing
        # about what the receiver meant: retried like any other failed attempt.
        outcome = Outcome.RETRY if response.error else classify(response.status_code)
        attempts.append(
            DeliveryAttempt(
                delivery=delivery,
                number=delivery.attempts,
                url=endpoint.url,
                request_headers=loggable_headers(headers, endpoint.headers),
                status_code=response.status_code,
                response_headers=response.headers,
                response_body=response.body[:store_limit].decode("utf-8", errors="replace"),
                error=response.error,
                duration_ms=response.duration_ms,
                created_at=attempted_at,
            )
        )
        delivery.last_status_code = response.status_code
        delivery.last_error = describe_failure(
            response.status_code, response.error, response.headers
        )
        delivery.locked_until = None
        delivery.claim_token = None

        (healthy if outcome is Outcome.SUCCEEDED else failing).add(endpoint.pk)
        if outcome is Outcome.SUCCEEDED:
            delivery.status = Delivery.Status.SUCCEEDED
            delivery.completed_at = attempted_at
            delivery.next_attempt_at = None
            result.succeeded.append(delivery)
        elif outcome is Outcome.GONE:
            # The receiver asked us to stop: disable the endpoint; this waits for re-enable.
            gone.add(endpoint.pk)
            delivery.next_attempt_at = attempted_at
        else:
            retry_after = None
            if response.status_code in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = next_retry_delay(delivery.attempts, schedule, retry_after=retry_after)
            if delay is None:
                delivery.status = Delivery.Status.FAILED
                delivery.completed_at = attempted_at
                delivery.next_attempt_at = None
                result.failed.append(delivery)
            else:
                delivery.next_attempt_at = attempted_at + dt.timedelta(seconds=delay)
                result.retries.append((delivery.pk, delivery.next_attempt_at))

    def record() -> None:
        with transaction.atomic():
            DeliveryAttempt.objects.bulk_create(attempts)
            written = write_results(token, deliveries, skipped, result.succeeded)
            if written < len(deliveries):
                drop_lost_claims(result, deliveries)
            endpoints = {d.endpoint_id: d.endpoint for d in deliveries}
            for endpoint_id in gone:
                disable_endpoint(endpoints[endpoint_id], "The endpoint answered 410 Gone.", now=now)
            track_failures(endpoints, healthy, failing - healthy - gone, now=now)

    with_db_retries(record, what=f"record {len(attempts)} webhook attempts",
                    before_retry=forget_ids(attempts))  # fmt: skip
    send_outcome_signals(result, attempts)
    return result


def with_db_retries(
    work: Callable[[], T], *, what: str, before_retry: Callable[[], None] | None = None
) -> T:
    """Run ``work`` (autocommit or one transaction), again after a dropped connection or a lock
    timeout, with pauses of ``WRITE_RETRY_PAUSES``.

    Recording a batch's results is worth waiting for: its POSTs are made, and giving up means
    making them all again once the lease runs out. Inside an outer transaction nothing can be
    retried, so the error propagates at once.
    """
    for number, pause in enumerate((*WRITE_RETRY_PAUSES, None), start=1):
        try:
            return work()
        except (OperationalError, InterfaceError):
            if pause is None or connection.in_atomic_block:
                raise
            logger.warning("Could not %s (try %d); trying again in %gs", what, number, pause,
                           exc_info=True)  # fmt: skip
            # A broken connection is dropped here and replaced by the next query.
            connection.close_if_unusable_or_obsolete()
            if before_retry is not None:
                before_retry()
            time.sleep(pause)
    raise AssertionError("unreachable")


def forget_ids(attempts: list[DeliveryAttempt]) -> Callable[[], None]:
    """The rolled-back insert's ids must not be reused by the next try."""

    def forget() -> None:
        for attempt in attempts:
            attempt.pk = None
            attempt._state.adding = True

    return forget


def write_results(
    token: uuid.UUID, deliveries: list[Delivery], skipped: list[Delivery], succeeded: list[Delivery]
) -> int:
    """Write the batch's outcomes where our claim still holds; return how many rows changed.

    Successes share every value but ``attempts`` (one more each) and the code, so they take one
    UPDATE per status code; only retries and failures need ``bulk_update``'s per-row CASE, whose
    SQL costs more to build than the POSTs take on a fast receiver.
    """
    claimed = Delivery.objects.filter(claim_token=token)
    written = 0
    if skipped:
        written += claimed.filter(pk__in=[d.pk for d in skipped]).update(
            locked_until=None, claim_token=None
        )
    by_code: dict[int | None, list[Delivery]] = {}
    for delivery in succeeded:
        by_code.setdefault(delivery.last_status_code, []).append(delivery)
    for code, group in by_code.items():
        completed_at = max(d.completed_at for d in group if d.completed_at is not None)
        for delivery in group:
            delivery.completed_at = completed_at
        written += claimed.filter(pk__in=[d.pk for d in group]).update(
            status=Delivery.Status.SUCCEEDED, attempts=F("attempts") + 1, next_attempt_at=None,
            locked_until=None, claim_token=None, last_status_code=code, last_error="",
            completed_at=completed_at,
        )  # fmt: skip
    done = {d.pk for d in skipped} | {d.pk for d in succeeded}
    rest = [d for d in deliveries if d.pk not in done]
    if rest:
        written += claimed.bulk_update(rest, RESULT_FIELDS)
    return written


def drop_lost_claims(result: BatchResult, deliveries: list[Delivery]) -> None:
    """Forget outcomes whose rows another worker took over (our lease had run out): their
    results were not written, so no signal or retry may be sent for them."""
    stored = dict(
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).values_list("pk", "attempts")
    )
    lost = {d.pk for d in deliveries if stored.get(d.pk) != d.attempts}
    logger.warning("Lost the lease of %d webhook deliveries mid-batch", len(lost))
    result.succeeded = [d for d in result.succeeded if d.pk not in lost]
    result.failed = [d for d in result.failed if d.pk not in lost]
    result.retries = [(pk, when) for pk, when in result.retries if pk not in lost]


def track_failures(
    endpoints: dict[int, Endpoint], healthy: set[int], failing: set[int], *, now: dt.datetime
) -> None:
    """Keep ``failing_since`` and disable endpoints failing continuously for DISABLE_AFTER.

    As Svix does: the clock starts at the first failure after the last success, and any success
    stops it. Queries run only when an endpoint changes state, not on every batch.
    """
    recovered = [pk for pk in healthy if endpoints[pk].failing_since is not None]
    if recovered:
        Endpoint.objects.filter(pk__in=recovered).update(failing_since=None)
    started = [pk for pk in failing if endpoints[pk].failing_since is None]
    if started:
        Endpoint.objects.filter(pk__in=started, failing_since__isnull=True).update(
            failing_since=now
        )
    limit = now - dt.timedelta(seconds=hooks_settings.DISABLE_AFTER)
    for pk in failing:
        since = endpoints[pk].failing_since
        if since is not None and since <= limit:
            days = hooks_settings.DISABLE_AFTER / 86400
            reason = f"Every delivery failed for {days:g} days (since {since:%Y-%m-%d %H:%M} UTC)."
            disable_endpoint(endpoints[pk], reason, now=now)


def send_attempt(
    delivery: Delivery,
    client: Transport,
    bodies: dict[str, bytes],
    signers: dict[int, Signer],
    now: dt.datetime,
) -> tuple[dict[str, str], HTTPResult]:
    """Sign and POST one delivery. Never raises: a problem on our side (an undecryptable secret,
    corrupt stored data) becomes the attempt's error, so the rest of the batch is still recorded."""
    endpoint, event = delivery.endpoint, delivery.event
    headers: dict[str, str] = {}
    started = time.perf_counter()
    try:
        body = bodies.get(event.pk)
        if body is None:
            body = bodies[event.pk] = encode_body(event.type, event.created_at, event.data)
        signer = signers.get(endpoint.pk)
        if signer is None:
            signer = signers[endpoint.pk] = Signer(endpoint.live_secrets(now))
        timestamp = int(time.time())
        headers = {
            **endpoint.headers,
            "content-type": "application/json",
            "webhook-id": event.pk,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signer.header(event.pk, timestamp, body),
        }
        return headers, client.post(endpoint.url, body, headers)
    except Exception as exc:
        logger.exception("Could not attempt webhook delivery %s", delivery.pk)
        elapsed = int((time.perf_counter() - started) * 1000)
        error = f"internal error: {type(exc).__name__}: {exc}"
        return headers, HTTPResult(None, {}, b"", error, elapsed)


def loggable_headers(sent: dict[str, str], custom: dict[str, str]) -> dict[str, str]:
    """The request headers for the attempt log, with the endpoint's own header values hidden
    (they often carry credentials such as an API key)."""
    hidden = {name.lower() for name in custom} if isinstance(custom, dict) else set()
    return {name: "[hidden]" if name.lower() in hidden else value for name, value in sent.items()}


def describe_failure(status_code: int | None, error: str, headers: dict[str, str]) -> str:
    if error:
        return error
    if status_code is None or 200 <= status_code < 300:
        return ""
    if 300 <= status_code < 400:
        location = headers.get("location", "")
        return f"HTTP {status_code}: redirects are not followed" + (
            f" (to {location})" if location else ""
        )
    return f"HTTP {status_code}"


def disable_endpoint(endpoint: Endpoint, reason: str, *, now: dt.datetime | None = None) -> bool:
    """Disable ``endpoint`` unless it already is; ``endpoint_disabled`` is sent after commit."""
    now = now or timezone.now()
    reason = reason[:255]
    changed = Endpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
        disabled_at=now, disabled_reason=reason
    )
    if changed:
        endpoint.disabled_at, endpoint.disabled_reason = now, reason
        logger.warning("Webhook endpoint %s disabled: %s", endpoint.pk, reason)
        transaction.on_commit(
            lambda: signals.endpoint_disabled.send_robust(
                Endpoint, endpoint=endpoint, reason=reason
            )
        )
    return bool(changed)


def send_outcome_signals(result: BatchResult, attempts: list[DeliveryAttempt]) -> None:
    last_attempt = {attempt.delivery_id: attempt for attempt in attempts}
    for signal, deliveries in (
        (signals.delivery_succeeded, result.succeeded),
        (signals.delivery_failed, result.failed),
    ):
        for delivery in deliveries:
            # A receiver's error must not stop the job before it schedules the retries.
            responses = signal.send_robust(
                Delivery, delivery=delivery, attempt=last_attempt.get(delivery.pk)
            )
            for receiver, response in responses:
                if isinstance(response, Exception):
                    logger.error("Signal receiver %r failed", receiver, exc_info=response)
