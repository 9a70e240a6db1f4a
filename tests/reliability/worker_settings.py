"""Settings for the worker processes of the reliability suite: the test database, a dedicated
Redis and DJANGO_HOOKS overrides, all passed by the test in the environment."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, DJANGO_HOOKS

DATABASES["default"]["NAME"] = os.environ["HOOKS_DB_NAME"]
DATABASES["default"].pop("TEST", None)
DATABASES["default"].setdefault("OPTIONS", {}).update(
    json.loads(os.environ.get("HOOKS_DB_OPTIONS", "{}"))
)
if os.environ.get("HOOKS_CONN_MAX_AGE"):
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["HOOKS_CONN_MAX_AGE"])
ROOT_URLCONF = "tests.reliability.receivers"
RQ_QUEUES = {"default": {"URL": os.environ["HOOKS_REDIS_URL"]}}
DJANGO_HOOKS = {**DJANGO_HOOKS, **json.loads(os.environ.get("HOOKS_SETTINGS", "{}"))}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_hooks": {"handlers": ["console"], "level": "INFO"},
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}
