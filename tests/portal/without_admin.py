"""Settings of a site that mounts the portal without django.contrib.admin (run by
tests/portal/test_without_admin.py in a fresh process)."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django.contrib.admin"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "tests.portal.without_admin_urls"
