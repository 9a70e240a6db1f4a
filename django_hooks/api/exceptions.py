"""The API's refusals as DRF exceptions, so the project's ``EXCEPTION_HANDLER`` formats them.

With DRF's default handler the body is ``{"detail": ..., "code": ...}``: ``OwnedViewSet`` adds
the ``code`` that DRF's handler leaves out.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException

__all__ = ["CodedAPIException", "Conflict", "IdempotencyKeyReused", "InvalidIdempotencyKey"]


class CodedAPIException(APIException):
    """An API refusal whose default-handler body names its code beside the detail."""


class Conflict(CodedAPIException):
    """409: the object's state forbids it (an inactive endpoint, a delivery that cannot be
    retried), or a request with the same ``Idempotency-Key`` is in progress."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the object."
    default_code = "conflict"


class IdempotencyKeyReused(CodedAPIException):
    """422: the ``Idempotency-Key`` was used for a different request in the last 24 hours."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used for a different request."
    default_code = "idempotency_key"


class InvalidIdempotencyKey(CodedAPIException):
    """400: the ``Idempotency-Key`` header is empty, too long or not printable."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Idempotency-Key must be 1 to 255 printable characters."
    default_code = "idempotency_key"
