"""Settings for the benchmark suite: the database and Redis come from the environment."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.settings import database_from_url  # noqa: E402

SECRET_KEY = "django-hooks-benchmarks-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("BENCH_DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["BENCH_DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get(
                "BENCH_SQLITE", str(ROOT / "benchmarks" / "out" / "bench.sqlite3")
            ),
            # WAL lets the workers and the application write without blocking each other's reads.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# As recommended for worker processes (docs/operations.md): keep the connection between jobs,
# checked before reuse, instead of reconnecting for every batch.
for database in DATABASES.values():
    database["CONN_MAX_AGE"] = (
        None
        if os.environ.get("BENCH_CONN_MAX_AGE", "none") == "none"
        else int(os.environ["BENCH_CONN_MAX_AGE"])
    )
    database["CONN_HEALTH_CHECKS"] = True

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_rq",
    "django_hooks",
    "benchmarks.benchapp",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]

RQ_QUEUES = {"default": {"URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}}

DJANGO_HOOKS = {
    "ALLOWED_NETWORKS": ["127.0.0.0/8"],
    "RETRY_SCHEDULE": [1, 1, 1],
    # The noisy-neighbour benchmark's hanging endpoint holds each attempt this long.
    "TIMEOUT": float(os.environ.get("BENCH_TIMEOUT", "5")),
}
if os.environ.get("BENCH_LEASE"):  # to try other leases by hand (the crash benchmark uses 30)
    DJANGO_HOOKS["LEASE"] = float(os.environ["BENCH_LEASE"])
if os.environ.get("BENCH_BATCH_SIZE"):  # to try other batch sizes by hand
    DJANGO_HOOKS["BATCH_SIZE"] = int(os.environ["BENCH_BATCH_SIZE"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"handlers": [], "level": "WARNING"},
}
