"""Serializers of the REST API. Secrets never appear here except in ``SecretSerializer``; Ed25519
signing keys never do (only their public keys)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import exceptions, serializers

from django_hooks.core import credentials
from django_hooks.exceptions import EndpointValidationError, InvalidCredentials
from django_hooks.internal.writeonly import HIDDEN_VALUE, keep_hidden_headers
from django_hooks.models import Delivery, DeliveryAttempt, Endpoint, Event, SigningScheme
from django_hooks.outbound.state import enable_endpoint

__all__: list[str] = []

MAX_GRACE_PERIOD = 7 * 24 * 3600


class ReceiverAuthField(serializers.Field):
    """Write: ``{"kind": "basic", "username": ..., "password": ...}`` (or bearer ``token``;
    oauth2 ``token_url``, ``client_id``, ``client_secret``, ``scope``; mtls ``certificate``,
    ``private_key``), null to remove. Read: the kind and its non-secret parts only."""

    def get_attribute(self, instance: Endpoint) -> Any:
        return instance.auth_public or None

    def to_representation(self, value: Any) -> Any:
        return value

    def to_internal_value(self, data: Any) -> Any:
        try:
            return credentials.from_dict(data)
        except InvalidCredentials as exc:
            raise serializers.ValidationError(str(exc)) from None


class EndpointSerializer(serializers.ModelSerializer):
    # A plain string here: the model's SSRF guard then names why a URL is refused ("127.0.0.1 is
    # a loopback address"), where DRF's URL check would only say "Enter a valid URL.".
    url = serializers.CharField(
        max_length=2048, help_text="The https:// (or http://) URL that receives the webhooks."
    )
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        max_length=200,
        help_text='Event types to receive; empty for all. "order.*" matches every order event.',
    )
    headers = serializers.DictField(
        child=serializers.CharField(max_length=4096, allow_blank=True),
        required=False,
        help_text=f"Extra headers sent with every request. Responses show each value as "
        f"{HIDDEN_VALUE!r}; that value sent back keeps the stored one.",
    )
    auth = ReceiverAuthField(
        required=False,
        allow_null=True,
        help_text="Credentials the receiver demands: basic, bearer, oauth2 or mtls. Responses "
        "show only the kind and non-secret parts (username, token URL, client id, scope, "
        "certificate subject).",
    )
    is_receiving = serializers.BooleanField(read_only=True)
    signing_scheme = serializers.ChoiceField(
        choices=SigningScheme.choices,
        required=False,
        help_text='"hmac" (v1, the default), "ed25519" (v1a: receivers verify with the public '
        'key at public-key/), or "hmac+ed25519" (both, while receivers switch).',
    )

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "headers",
            "auth",
            "max_concurrency",
            "rate_limit",
            "signing_scheme",
            "send_traceparent",
            "is_receiving",
            "disabled_at",
            "disabled_reason",
            "disabled_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "disabled_at",
            "disabled_reason",
            "disabled_by",
            "created_at",
            "updated_at",
        ]

    def to_representation(self, instance: Endpoint) -> dict[str, Any]:
        data = super().to_representation(instance)
        if isinstance(data.get("headers"), dict):
            data["headers"] = {name: HIDDEN_VALUE for name in data["headers"]}
        return data

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        stored = self.instance.headers if isinstance(self.instance, Endpoint) else {}
        try:
            return keep_hidden_headers(value, stored)
        except EndpointValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["headers"]) from None

    def _save(self, instance: Endpoint) -> Endpoint:
        try:
            instance.save()
        except EndpointValidationError as exc:
            # The model's own validation (SSRF guard, subscriptions, headers) names each field.
            raise serializers.ValidationError(exc.message_dict) from None
        return instance

    def create(self, validated_data: dict[str, Any]) -> Endpoint:
        owner = validated_data.pop("owner")
        instance = Endpoint(**validated_data)
        instance.owner = owner
        return self._save(instance)

    def update(self, instance: Endpoint, validated_data: dict[str, Any]) -> Endpoint:
        # Setting is_active on an endpoint disabled for failing re-enables it, as in the admin;
        # one an operator disabled stays disabled until an operator lifts it.
        reenable = validated_data.get("is_active") is True and instance.disabled_at is not None
        if reenable and instance.disabled_by == "operator":
            raise exceptions.PermissionDenied(
                "This endpoint was disabled by an operator "
                f"({instance.disabled_reason or 'no reason given'}); only an operator can "
                "enable it again."
            )
        for name, value in validated_data.items():
            setattr(instance, name, value)
        with transaction.atomic():
            self._save(instance)
            if reenable:
                enable_endpoint(instance)
        return instance


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True, help_text="The current whsec_ signing secret.")


class RotateSecretSerializer(serializers.Serializer):
    grace_period = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_GRACE_PERIOD,
        help_text="Seconds the old secret keeps signing (default: SECRET_GRACE_PERIOD).",
    )


class RotatedSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True)
    previous_expires_at = serializers.DateTimeField(read_only=True, allow_null=True)


class PreviousPublicKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)


class PublicKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(
        read_only=True,
        help_text="The whpk_ Ed25519 key that verifies this endpoint's v1a signatures.",
    )
    previous_public_keys = PreviousPublicKeySerializer(
        many=True,
        read_only=True,
        help_text="Keys rotated out but still signing until expires_at: accept them too.",
    )


class WindowSerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until <= since:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class RecoverSerializer(WindowSerializer):
    since = serializers.DateTimeField(help_text="Redeliver failed deliveries created from then.")


class RecoveredSerializer(serializers.Serializer):
    recovered = serializers.IntegerField(help_text="Failed deliveries queued again.")


class ReplayMissingSerializer(WindowSerializer):
    """Both optional: by default, the endpoint's disabled spell."""


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="Missed events queued for this endpoint.")
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    enabled = serializers.BooleanField(help_text="Whether the endpoint was enabled first.")


class StatsSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    pending = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    success_rate = serializers.FloatField(
        allow_null=True, help_text="succeeded / (succeeded + failed); null if none finished."
    )


class TestEventSerializer(serializers.Serializer):
    """A test send carries the test event type, or a declared type with its example: never data
    of the caller's choosing, which the endpoint's secret would sign (a signing oracle)."""

    event_type = serializers.CharField(
        required=False,
        max_length=255,
        help_text="TEST_EVENT_TYPE (default), or a declared event type that has an example.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "data" in self.initial_data:
            raise serializers.ValidationError(
                {"data": ["A test event carries its type's declared example, not chosen data."]}
            )
        return attrs


class EventTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    schema = serializers.JSONField(allow_null=True)
    example = serializers.JSONField(allow_null=True)


class DeliverySummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "endpoint",
            "status",
            "attempts",
            "last_status_code",
            "next_attempt_at",
            "created_at",
            "completed_at",
        ]


class EventSerializer(serializers.ModelSerializer):
    timestamp = serializers.DateTimeField(source="created_at", read_only=True)
    data = serializers.JSONField()

    class Meta:
        model = Event
        fields = ["id", "type", "timestamp", "data", "is_test"]


class EventDetailSerializer(EventSerializer):
    deliveries = DeliverySummarySerializer(many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "deliveries"]


class FeedEventSerializer(EventSerializer):
    cursor = serializers.CharField(source="feed_position", read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "cursor"]


class FeedPageSerializer(serializers.Serializer):
    data = FeedEventSerializer(many=True)
    next = serializers.CharField(help_text="Pass as ?after= to read on.")
    has_more = serializers.BooleanField(help_text="True if more events are ready now.")


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "url",
            "status_code",
            "response_headers",
            "response_body",
            "error",
            "duration_ms",
            "created_at",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "event_type",
            "endpoint",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "completed_at",
        ]


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempt_log"]
