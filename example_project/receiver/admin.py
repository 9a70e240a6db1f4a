from django.contrib import admin

from receiver.models import ReceivedWebhook


@admin.register(ReceivedWebhook)
class ReceivedWebhookAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "customer", "type", "received_at"]
    list_filter = ["customer", "type"]
