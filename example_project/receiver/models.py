from django.db import models


class ReceivedWebhook(models.Model):
    """What the receiving site got: one row per verified call (duplicates are dropped)."""

    webhook_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=255)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
