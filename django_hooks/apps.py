from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed


class DjangoHooksConfig(AppConfig):
    name = "django_hooks"
    verbose_name = "Webhooks"
    # Pinned so that the host project's DEFAULT_AUTO_FIELD never changes our migrations.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, as Django asks: these modules import models, which need the registry.
        from django_hooks import checks  # noqa: F401  (registers the system checks)
        from django_hooks.conf import reload_hooks_settings
        from django_hooks.exceptions import ConfigurationError
        from django_hooks.outbound import feed
        from django_hooks.outbound.dispatch import connect_model_events_setting
        from django_hooks.outbound.emails import connect_owner_emails
        from django_hooks.outbound.operational import connect_operational_events

        setting_changed.connect(reload_hooks_settings, dispatch_uid="django_hooks.settings")
        connect_model_events_setting()
        connect_operational_events()
        connect_owner_emails()
        try:
            enabled = feed.feed_enabled()
        except ConfigurationError:  # unusable settings are the checks' to report (E005)
            enabled = True
        if enabled:
            feed.connect()
