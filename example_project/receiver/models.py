from django.db import models


class ReceivedWebhook(models.Model):
    """What the receiving site got: one row per verified call (duplicates are dropped)."""

    # Which customer's receiver URL took the call: each customer verifies with its own secret.
    customer = models.SlugField(default="")
    webhook_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=255)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"
