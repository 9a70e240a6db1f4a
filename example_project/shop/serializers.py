from rest_framework import serializers

from shop.models import Order


class OrderSerializer(serializers.ModelSerializer):
    """The ``data`` of every order.* webhook."""

    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Order
        fields = ["id", "customer", "customer_email", "total", "status", "created_at"]
