from django.contrib import admin

from shop.models import Customer, Order


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "user"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Saving an order here sends order.updated to its customer's endpoints."""

    list_display = ["id", "customer", "customer_email", "total", "status", "created_at"]
    list_filter = ["status", "customer"]
