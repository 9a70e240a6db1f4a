"""The Django admin as the webhook console: endpoints with their health, events, deliveries with
every attempt, and inbound calls. Nothing here ever shows a secret except the explicit reveal and
rotate pages."""

from django_hooks.admin import endpoints, records  # noqa: F401  (registers the ModelAdmins)

__all__: list[str] = []
