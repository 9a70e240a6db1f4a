from django.conf import settings
from django.db import models


class Customer(models.Model):
    """A customer account of the shop: it owns its webhook endpoints and its orders' events."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    # The login a customer uses for the REST API (DJANGO_HOOKS["API_OWNER"] maps it back here).
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer",
    )

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    """An order; DJANGO_HOOKS["MODEL_EVENTS"] turns its changes into order.* webhooks, sent
    only to the endpoints its customer owns."""

    customer = models.ForeignKey(
        Customer, null=True, on_delete=models.CASCADE, related_name="orders"
    )
    customer_email = models.EmailField()
    total = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=20, default="new")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"
