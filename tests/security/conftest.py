from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def superuser_client(db) -> Client:
    """A logged-in superuser without a password hash to compute (PBKDF2 costs a second)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(
        username="security-admin", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(user)
    return client
