"""The Django admin as the webhook console: endpoints with their health, events, deliveries with
every attempt, and inbound calls. Nothing here ever shows a secret except the explicit reveal and
rotate pages."""

from django.apps import apps

# Registered only on sites that use the admin: the customer portal imports admin.chart, and
# must work on a site without django.contrib.admin.
if apps.is_installed("django.contrib.admin"):
    from django_hooks.admin import endpoints, records  # noqa: F401  (registers the ModelAdmins)
