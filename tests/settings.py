"""Settings for the test suite: SQLite by default, PostgreSQL when DATABASE_URL is set."""

import os
import tempfile
from urllib.parse import unquote, urlsplit

SECRET_KEY = "django-hooks-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"  # differs from ours on purpose
ALLOWED_HOSTS = ["*"]
STATIC_URL = "static/"
# Django 6.1+ sends mail through MAILERS (the test runner swaps each for locmem); older
# versions ignore the setting and use EMAIL_BACKEND.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def database_from_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r} (use postgres://)")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
            # A file, not :memory:, so that the worker processes of tests/reliability share the
            # test database; WAL and IMMEDIATE transactions let several processes write to it.
            "TEST": {
                "NAME": os.path.join(
                    tempfile.gettempdir(), f"django-hooks-tests-{os.getpid()}.sqlite3"
                )
            },
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
        }
    }

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "rest_framework.authtoken",  # docs/api.md's token set-up is tested as written
    "django_rq",
    "django_hooks",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The URL is replaced by the session's redis fixture (tests/conftest.py) before any test runs.
RQ_QUEUES = {"default": {"URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0")}}

DJANGO_HOOKS = {
    "ALLOWED_NETWORKS": ["127.0.0.0/8"],
    "RETRY_SCHEDULE": [0, 0, 0],
    "TIMEOUT": 2,
}
