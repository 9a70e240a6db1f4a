"""One attempt of a delivery, and writing what a group of attempts did in one transaction.

``send_attempt`` runs in the worker's threads: it signs and POSTs, touching no database.
``Outcomes`` turns finished attempts into status changes (succeeded, retry at, failed, 410's
disable, the endpoint's circuit) and ``Outcomes.write`` records them in bulk, only where this
worker's claim still holds, so a late worker cannot undo a success. Whatever one delivery's
response or bookkeeping raises is recorded as that delivery's error; the rest is still written.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from django_hooks import signals
from django_hooks.conf import hooks_settings
from django_hooks.core.payload import encode_body
from django_hooks.core.retry import Outcome, classify, next_retry_delay, parse_retry_after
from django_hooks.core.signing import Signer
from django_hooks.exceptions import DecryptionError
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, UnreadableHeaders
from django_hooks.outbound import telemetry
from django_hooks.outbound.claims import release
from django_hooks.outbound.credentials import post_with_auth
from django_hooks.outbound.state import disable_endpoint
from django_hooks.outbound.transport import HTTPResult, Transport

if TYPE_CHECKING:
    from django_hooks.outbound.otel import AttemptSpan

__all__: list[str] = []

logger = logging.getLogger("django_hooks")

T = TypeVar("T")

RESULT_FIELDS = [
    "status",
    "attempts",
    "next_attempt_at",
    "locked_until",
    "claim_token",
    "last_status_code",
    "last_error",
    "completed_at",
]
WRITE_RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)  # seconds between tries to record a group's results
#: Seconds an endpoint's circuit stays open after its n-th opening in a row (then the last).
CIRCUIT_COOLDOWNS = (5, 10, 20, 40, 80, 160, 300)


def circuit_cooldown(failures: int) -> int:
    return CIRCUIT_COOLDOWNS[min(max(failures, 1), len(CIRCUIT_COOLDOWNS)) - 1]


@dataclass
class Attempted:
    """One claimed delivery back from a worker thread; ``response`` None: not attempted."""

    delivery: Delivery
    headers: dict[str, str] = field(default_factory=dict)
    response: HTTPResult | None = None
    at: dt.datetime = field(default_factory=timezone.now)
    #: The attempt's span (``TELEMETRY``), ended once its outcome is known.
    span: AttemptSpan | None = None


@dataclass
class BatchResult:
    """What one group of attempts did: the deliveries themselves, for the outcome signals."""

    attempted: int = 0
    succeeded: list[Delivery] = field(default_factory=list)
    failed: list[Delivery] = field(default_factory=list)
    retries: list[tuple[int, dt.datetime]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "attempted": self.attempted,
            "succeeded": len(self.succeeded),
            "failed": len(self.failed),
            "retrying": len(self.retries),
        }


@dataclass
class Totals:
    """What a drain did, added up over its groups: counts only, so a drain that runs for a
    minute at full speed holds no delivery (nor its payload) once its group is written."""

    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    retrying: int = 0

    def add(self, result: BatchResult) -> None:
        for name, value in result.summary().items():
            setattr(self, name, getattr(self, name) + value)

    def summary(self) -> dict[str, int]:
        return {
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retrying": self.retrying,
        }


class Outcomes:
    """The status changes of one group of finished attempts, written in one transaction."""

    def __init__(self, token: uuid.UUID) -> None:
        self.token = token
        self.result = BatchResult()
        self.deliveries: list[Delivery] = []
        self.attempts: list[DeliveryAttempt] = []
        self.released: dict[dt.datetime | None, list[Delivery]] = {}
        self.endpoints: dict[int, Endpoint] = {}
        self.gone: set[int] = set()
        self.healthy: set[int] = set()
        self.failing: set[int] = set()
        self.answered: set[int] = set()
        self.unreachable: set[int] = set()
        #: Each attempt's outcome: succeeded, retrying, failed (no retry left) or gone (410).
        self.outcomes: list[str] = []

    # -- bookkeeping ---------------------------------------------------------------------------

    def add(self, attempted: Attempted) -> None:
        """Apply one finished attempt; a failure here is recorded as the attempt's error."""
        delivery = attempted.delivery
        self.endpoints.setdefault(delivery.endpoint_id, delivery.endpoint)
        if attempted.response is None:
            self.release(delivery)
            return
        attempts_before, result = delivery.attempts, self.result
        counts = (result.attempted, len(result.succeeded), len(result.failed), len(result.retries))
        try:
            self._apply(attempted)
        except Exception as exc:
            logger.exception("Could not record webhook delivery %s's attempt", delivery.pk)
            delivery.attempts = attempts_before
            result.attempted = counts[0]
            del result.succeeded[counts[1] :], result.failed[counts[2] :]
            del result.retries[counts[3] :]
            error = f"internal error: {type(exc).__name__}: {exc}"[:1000]
            self._apply(
                Attempted(
                    delivery, {}, HTTPResult(None, {}, b"", error), attempted.at, attempted.span
                )
            )

    def release(self, delivery: Delivery, at: dt.datetime | None = None) -> None:
        """Hand back unattempted: due again at ``at`` (or as it was)."""
        self.released.setdefault(at, []).append(delivery)

    def _apply(self, attempted: Attempted) -> None:
        delivery, response, at = attempted.delivery, attempted.response, attempted.at
        assert response is not None
        endpoint = delivery.endpoint
        delivery.attempts += 1
        self.result.attempted += 1
        # A status line followed by a broken body (reset, timeout, bad chunking) proves nothing
        # about what the receiver meant: retried like any other failed attempt.
        outcome = Outcome.RETRY if response.error else classify(response.status_code)
        store_limit = int(hooks_settings.RESPONSE_STORE_LIMIT)
        attempt = DeliveryAttempt(
            delivery=delivery,
            number=delivery.attempts,
            url=endpoint.url,
            request_headers=loggable_headers(attempted.headers, endpoint.headers),
            status_code=response.status_code,
            response_headers=bounded_headers(response.headers),
            response_body=response.body[:store_limit].decode("utf-8", errors="replace"),
            error=response.error,
            duration_ms=response.duration_ms,
            created_at=at,
        )
        delivery.last_status_code = response.status_code
        delivery.last_error = describe_failure(
            response.status_code, response.error, response.headers
        )
        delivery.locked_until = None
        delivery.claim_token = None
        if response.status_code is not None:
            self.answered.add(endpoint.pk)
        elif response.unreachable:
            self.unreachable.add(endpoint.pk)

        (self.healthy if outcome is Outcome.SUCCEEDED else self.failing).add(endpoint.pk)
        label = "retrying"
        if outcome is Outcome.SUCCEEDED:
            label = "succeeded"
            delivery.status = Delivery.Status.SUCCEEDED
            delivery.completed_at = at
            delivery.next_attempt_at = None
            self.result.succeeded.append(delivery)
        elif outcome is Outcome.GONE:
            # The receiver asked us to stop: disable the endpoint; this waits for re-enable.
            label = "gone"
            self.gone.add(endpoint.pk)
            delivery.next_attempt_at = at
        else:
            retry_after = None
            if response.status_code in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = next_retry_delay(
                delivery.attempts, hooks_settings.RETRY_SCHEDULE, retry_after=retry_after
            )
            if delay is None:
                label = "failed"
                delivery.status = Delivery.Status.FAILED
                delivery.completed_at = at
                delivery.next_attempt_at = None
                self.result.failed.append(delivery)
            else:
                delivery.next_attempt_at = at + dt.timedelta(seconds=delay)
                self.result.retries.append((delivery.pk, delivery.next_attempt_at))
        self.attempts.append(attempt)
        self.deliveries.append(delivery)
        self.outcomes.append(label)
        if attempted.span is not None:
            attempted.span.end(label, response, at)

    # -- writing -------------------------------------------------------------------------------

    def write(self) -> BatchResult:
        """Record everything in one transaction (tried again on a dropped connection), then
        send the outcome signals."""
        if not self.deliveries and not self.released:
            return self.result
        now = timezone.now()

        def record() -> None:
            with transaction.atomic():
                for at, group in self.released.items():
                    release(self.token, [d.pk for d in group], at=at)
                if not self.deliveries:
                    return
                DeliveryAttempt.objects.bulk_create(self.attempts)
                written = write_results(self.token, self.deliveries, self.result.succeeded)
                if written < len(self.deliveries):
                    drop_lost_claims(self.result, self.deliveries)
                for endpoint_id in self.gone:
                    disable_endpoint(
                        self.endpoints[endpoint_id],
                        "The endpoint answered 410 Gone.",
                        by="system",
                        now=now,
                    )
                track_failures(
                    self.endpoints, self.healthy, self.failing - self.healthy - self.gone, now=now
                )
                self._update_circuits(now)

        with_db_retries(
            record,
            what=f"record {len(self.attempts)} webhook attempts",
            before_retry=forget_ids(self.attempts),
        )
        hooks = telemetry.active()
        if hooks is not None:
            hooks.record_results(self.result, self.outcomes)
        send_outcome_signals(self.result, self.attempts)
        return self.result

    def _update_circuits(self, now: dt.datetime) -> None:
        """An answer closes an endpoint's circuit; no answer in time opens it (once, however
        many attempts saw it), pausing the endpoint for a cooldown that doubles each time."""
        closing = [pk for pk in self.answered if self.endpoints[pk].circuit_failures]
        if closing:
            Endpoint.objects.filter(pk__in=closing, circuit_failures__gt=0).update(
                circuit_failures=0, paused_until=None
            )
        for pk in self.unreachable - self.answered:
            failures = self.endpoints[pk].circuit_failures + 1
            until = now + dt.timedelta(seconds=circuit_cooldown(failures))
            opened = Endpoint.objects.filter(
                Q(paused_until__isnull=True) | Q(paused_until__lte=now), pk=pk
            ).update(circuit_failures=F("circuit_failures") + 1, paused_until=until)
            if opened:
                logger.warning(
                    "Webhook endpoint %s unreachable: no attempts for %ss",
                    pk,
                    circuit_cooldown(failures),
                )


def with_db_retries(
    work: Callable[[], T], *, what: str, before_retry: Callable[[], None] | None = None
) -> T:
    """Run ``work`` (autocommit or one transaction), again after a dropped connection or a lock
    timeout, with pauses of ``WRITE_RETRY_PAUSES``.

    Recording results is worth waiting for: their POSTs are made, and giving up means making
    them all again once the lease runs out. Inside an outer transaction nothing can be
    retried, so the error propagates at once.
    """
    for number, pause in enumerate((*WRITE_RETRY_PAUSES, None), start=1):
        try:
            return work()
        except (OperationalError, InterfaceError):
            if pause is None or connection.in_atomic_block:
                raise
            logger.warning(
                "Could not %s (try %d); trying again in %gs", what, number, pause, exc_info=True
            )
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


def write_results(token: uuid.UUID, deliveries: list[Delivery], succeeded: list[Delivery]) -> int:
    """Write the outcomes where our claim still holds; return how many rows changed.

    Successes share every value but ``attempts`` (one more each) and the code, so they take one
    UPDATE per status code; only retries and failures need ``bulk_update``'s per-row CASE, whose
    SQL costs more to build than the POSTs take on a fast receiver.
    """
    claimed = Delivery.objects.filter(claim_token=token)
    written = 0
    by_code: dict[int | None, list[Delivery]] = {}
    for delivery in succeeded:
        by_code.setdefault(delivery.last_status_code, []).append(delivery)
    for code, group in by_code.items():
        completed_at = max(d.completed_at for d in group if d.completed_at is not None)
        for delivery in group:
            delivery.completed_at = completed_at
        written += claimed.filter(pk__in=[d.pk for d in group]).update(
            status=Delivery.Status.SUCCEEDED,
            attempts=F("attempts") + 1,
            next_attempt_at=None,
            locked_until=None,
            claim_token=None,
            last_status_code=code,
            last_error="",
            completed_at=completed_at,
        )
    done = {d.pk for d in succeeded}
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
    stops it. Queries run only when an endpoint changes state, not on every group.
    """
    recovered = [pk for pk in healthy if endpoints[pk].failing_since is not None]
    if recovered:
        Endpoint.objects.filter(pk__in=recovered).update(
            failing_since=None, failure_warnings_sent=0
        )
        for pk in recovered:
            endpoints[pk].failing_since, endpoints[pk].failure_warnings_sent = None, 0
    started = [pk for pk in failing if endpoints[pk].failing_since is None]
    if started:
        Endpoint.objects.filter(pk__in=started, failing_since__isnull=True).update(
            failing_since=now, failure_warnings_sent=0
        )
    limit = now - dt.timedelta(seconds=hooks_settings.DISABLE_AFTER)
    for pk in failing:
        since = endpoints[pk].failing_since
        if since is None:
            continue
        if since <= limit:
            days = hooks_settings.DISABLE_AFTER / 86400
            reason = f"Every delivery failed for {days:g} days (since {since:%Y-%m-%d %H:%M} UTC)."
            disable_endpoint(endpoints[pk], reason, by="system", now=now)
        else:
            warn_if_due(endpoints[pk], since, now)


def warning_thresholds() -> list[float]:
    """``FAILURE_WARNINGS`` as used: ascending, each below ``DISABLE_AFTER``."""
    limit = float(hooks_settings.DISABLE_AFTER)
    return sorted(float(t) for t in hooks_settings.FAILURE_WARNINGS or [] if 0 < float(t) < limit)


def warn_if_due(endpoint: Endpoint, since: dt.datetime, now: dt.datetime) -> None:
    """Send ``endpoint_failing`` (after commit) when the endpoint has failed past a threshold it
    has not been warned of. The conditional UPDATE makes that once per threshold and failing
    spell, whichever worker sees it first and however often workers restart; a worker that
    was down past two thresholds sends the later one only."""
    thresholds = warning_thresholds()
    failing_for = (now - since).total_seconds()
    level = sum(1 for threshold in thresholds if threshold <= failing_for)
    if level <= endpoint.failure_warnings_sent:
        return
    won = Endpoint.objects.filter(
        pk=endpoint.pk,
        failing_since=since,
        failure_warnings_sent__lt=level,
        disabled_at__isnull=True,
    ).update(failure_warnings_sent=level)
    if not won:  # another worker warned of it (or the endpoint recovered or was disabled)
        endpoint.failure_warnings_sent = level
        return
    threshold = thresholds[level - 1]
    disable_at = since + dt.timedelta(seconds=float(hooks_settings.DISABLE_AFTER))
    logger.warning(
        "Webhook endpoint %s has failed for %s; it will be disabled at %s",
        endpoint.pk,
        describe_seconds(threshold),
        disable_at,
    )

    def warned() -> None:
        # Only once committed: a results write tried again after a dropped connection must
        # claim the warning again, not skip it.
        endpoint.failure_warnings_sent = level
        signals.endpoint_failing.send_robust(
            Endpoint,
            endpoint=endpoint,
            failing_since=since,
            threshold=threshold,
            disable_at=disable_at,
        )

    transaction.on_commit(warned)


def describe_seconds(seconds: float) -> str:
    """``3600`` -> "1 hour", ``129600`` -> "1.5 days": for log lines, events and emails."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:g} {unit}{'' if value == 1 else 's'}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"


def send_attempt(
    delivery: Delivery,
    client: Transport,
    bodies: dict[str, bytes],
    signers: dict[int, Signer],
    now: dt.datetime,
    *,
    traceparent: str | None = None,
) -> tuple[dict[str, str], HTTPResult]:
    """Sign and POST one delivery (with a ``traceparent`` header when given). Never raises: a
    problem on our side (an undecryptable secret, corrupt stored data) becomes the attempt's
    error, so the rest of the group is still recorded. Runs in a worker thread: no database
    access."""
    endpoint, event = delivery.endpoint, delivery.event
    headers: dict[str, str] = {}
    started = time.perf_counter()
    try:
        body = bodies.get(event.pk)
        if body is None:
            body = bodies[event.pk] = encode_body(event.type, event.created_at, event.data)
        signer = signers.get(endpoint.pk)
        if signer is None:
            signer = signers[endpoint.pk] = Signer(endpoint.signing_credentials(now))
        if isinstance(endpoint.headers, UnreadableHeaders):
            raise DecryptionError(UnreadableHeaders.message)
        timestamp = int(time.time())
        headers = {
            **endpoint.headers,
            "content-type": "application/json",
            "webhook-id": event.pk,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signer.header(event.pk, timestamp, body),
        }
        if traceparent:
            headers["traceparent"] = traceparent
        return headers, post_with_auth(endpoint, client, body, headers)
    except Exception as exc:
        logger.exception("Could not attempt webhook delivery %s", delivery.pk)
        elapsed = int((time.perf_counter() - started) * 1000)
        error = f"internal error: {type(exc).__name__}: {exc}"
        return headers, HTTPResult(None, {}, b"", error, elapsed)


#: Request headers never stored in the attempt log: the receiver credentials' own.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def loggable_headers(sent: dict[str, str], custom: dict[str, str]) -> dict[str, str]:
    """The request headers for the attempt log, with the endpoint's own header values and the
    credentials' Authorization hidden (custom headers often carry an API key)."""
    hidden = {name.lower() for name in custom} if isinstance(custom, dict) else set()
    hidden |= CREDENTIAL_HEADERS
    return {name: "[hidden]" if name.lower() in hidden else value for name, value in sent.items()}


#: Bounds on what one attempt stores of a response's headers (a receiver chooses them).
MAX_STORED_HEADER_VALUE = 1024
MAX_STORED_HEADERS_TOTAL = 8 * 1024
MAX_LAST_ERROR = 1000


def bounded_headers(headers: dict[str, str]) -> dict[str, str]:
    """The response headers as stored: each value cut to ``MAX_STORED_HEADER_VALUE``, and no
    more headers once ``MAX_STORED_HEADERS_TOTAL`` characters are stored."""
    stored: dict[str, str] = {}
    total = 0
    for name, value in headers.items():
        name, value = name[:MAX_STORED_HEADER_VALUE], value[:MAX_STORED_HEADER_VALUE]
        total += len(name) + len(value)
        if total > MAX_STORED_HEADERS_TOTAL:
            stored["x-django-hooks-truncated"] = "more headers were not stored"
            break
        stored[name] = value
    return stored


def describe_failure(status_code: int | None, error: str, headers: dict[str, str]) -> str:
    if error:
        return error[:MAX_LAST_ERROR]
    if status_code is None or 200 <= status_code < 300:
        return ""
    if 300 <= status_code < 400:
        location = headers.get("location", "")[:200]
        return f"HTTP {status_code}: redirects are not followed" + (
            f" (to {location})" if location else ""
        )
    return f"HTTP {status_code}"


def send_outcome_signals(result: BatchResult, attempts: list[DeliveryAttempt]) -> None:
    last_attempt = {attempt.delivery_id: attempt for attempt in attempts}
    for signal, deliveries in (
        (signals.delivery_succeeded, result.succeeded),
        (signals.delivery_failed, result.failed),
    ):
        for delivery in deliveries:
            # A receiver's error must not stop the worker before it records the next group
            # (send_robust logs it).
            signal.send_robust(Delivery, delivery=delivery, attempt=last_attempt.get(delivery.pk))
