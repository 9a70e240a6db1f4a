from django.db import models


class Order(models.Model):
    """An order; DJANGO_HOOKS["MODEL_EVENTS"] turns its changes into order.* webhooks."""

    customer_email = models.EmailField()
    total = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=20, default="new")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"
