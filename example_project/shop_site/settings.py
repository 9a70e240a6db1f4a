"""The example shop: sends order events to its customers' endpoints and receives GitHub's;
its receiver app consumes the order events."""

import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "shop_site.urls"
WSGI_APPLICATION = "shop_site.wsgi.application"
STATIC_URL = "static/"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"timeout": 20},
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_rq",
    "django_hooks",
    "shop",
    "receiver",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

RQ_QUEUES = {"default": {"URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}}

DJANGO_HOOKS = {
    # The receiver runs on this machine; a real site leaves this empty.
    "ALLOWED_NETWORKS": ["127.0.0.0/8"],
    "RETRY_SCHEDULE": [1, 5, 30],
    "MODEL_EVENTS": {
        "shop.Order": {
            "prefix": "order",
            "serializer": "shop.serializers.OrderSerializer",
            # Each order's events go only to the endpoints its customer owns.
            "owner": "customer",
        },
    },
    # The REST API and the portal serve the customer account of the logged-in user, and only
    # its own objects.
    "API_OWNER": "shop.owners.customer_of_request",
    # The catalogue the portal (and the API's event-types/) shows customers.
    "EVENT_TYPES": {
        "order.created": {
            "description": "A customer placed an order.",
            "schema": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "customer": {"type": "string", "description": "The customer's slug."},
                    "customer_email": {"type": "string", "format": "email"},
                    "total": {"type": "string", "description": "Decimal, in euros."},
                    "status": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
            "example": {
                "id": 1,
                "customer": "acme",
                "customer_email": "orders@acme.example",
                "total": "25.00",
                "status": "new",
                "created_at": "2026-12-01T10:00:00Z",
            },
        },
        "order.updated": "An order changed (its status, its total).",
        "order.deleted": "An order was deleted.",
    },
}

# The secret each customer's receiver verifies with, {"<customer slug>": "whsec_..."} (set by
# `manage.py demo` and `manage.py serve`; a real receiving site keeps its own in its settings).
RECEIVER_WEBHOOK_SECRETS = json.loads(os.environ.get("RECEIVER_WEBHOOK_SECRETS") or "{}")

# The secret shared with GitHub for the shop's inbound hook at /hooks/github/.
GITHUB_WEBHOOK_SECRET = os.environ.get("GITHUB_WEBHOOK_SECRET", "example-github-secret")
