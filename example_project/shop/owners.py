"""Who a REST API request acts for: the customer account behind the logged-in user."""

from __future__ import annotations

from typing import Any

from shop.models import Customer


def customer_of_request(request: Any) -> Customer | None:
    """DJANGO_HOOKS["API_OWNER"]: the user's customer, else None (the API refuses the request)."""
    user = request.user
    if not user.is_authenticated:
        return None
    return Customer.objects.filter(user=user).first()
