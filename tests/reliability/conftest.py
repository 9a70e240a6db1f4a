"""Fixtures of the reliability suite: a dedicated Redis, worker subprocesses, a fast receiver."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from tests.fastreceiver import FastReceiver
from tests.reliability.harness import RedisServer, WorkerPool


@pytest.fixture
def fault_redis():
    """A redis-server of this test's own (crash, restart and flush it freely), as the queue's."""

    server = RedisServer()
    queue = settings.RQ_QUEUES["default"]
    previous = queue["URL"]
    # django_rq reads RQ_QUEUES once, so the URL is changed in place (as tests/conftest.py does).
    queue["URL"] = server.url
    yield server
    queue["URL"] = previous
    server.close()


@pytest.fixture
def fast_receiver():
    receiver = FastReceiver(hang_seconds=10)
    yield receiver
    receiver.close()


@pytest.fixture
def worker_pool(transactional_db, fault_redis, tmp_path):
    """Start workers with ``worker_pool(settings={...}, db_options={...}).start(n)``; all are
    killed before the test database is flushed."""
    pools: list[WorkerPool] = []

    def make(settings: dict | None = None, db_options: dict | None = None) -> WorkerPool:
        logdir = tmp_path / f"workers-{len(pools)}"
        logdir.mkdir()
        pool = WorkerPool(
            db_name=connection.settings_dict["NAME"],
            redis_url=fault_redis.url,
            settings=settings,
            db_options=db_options,
            logdir=str(logdir),
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop()
