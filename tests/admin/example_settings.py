"""The example shop's settings for the browser tests: a failed attempt fails the delivery at once
(no retries to wait for), so the test can retry it from the admin."""

from shop_site.settings import *  # noqa: F403
from shop_site.settings import DJANGO_HOOKS

DJANGO_HOOKS = {**DJANGO_HOOKS, "RETRY_SCHEDULE": []}
