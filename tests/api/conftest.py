from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from django_hooks.core import ids

API = "/api/hooks/"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")  # no password: hashing is slow


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob")


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def as_alice(alice):
    return client_for(alice)


@pytest.fixture
def as_bob(bob):
    return client_for(bob)


class TimeTravel:
    """Moves the clock of event ids and the feed forward (never back), without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def time_travel(monkeypatch):
    travel = TimeTravel()
    monkeypatch.setattr(ids, "clock", travel.now)
    return travel
