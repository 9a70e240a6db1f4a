from django.db import models


class Order(models.Model):
    """The plain insert every request-path figure is compared with."""

    reference = models.CharField(max_length=40)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
