"""``path("webhooks/", include("django_hooks.portal.urls"))``: the customer portal."""

from __future__ import annotations

from django.urls import path, register_converter

from django_hooks.portal import views

app_name = "django_hooks_portal"


class IdConverter:
    """A database id: digits, short enough for a 64-bit column (a longer one is a 404)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "hooks_id")

urlpatterns = [
    path("", views.endpoints, name="endpoints"),
    path("new/", views.endpoint_new, name="endpoint_new"),
    path("event-types/", views.event_types, name="event_types"),
    path("verify/", views.verify, name="verify"),
    path("link/<str:token>/", views.enter, name="enter"),
    path("<hooks_id:pk>/", views.endpoint, name="endpoint"),
    path("<hooks_id:pk>/edit/", views.endpoint_edit, name="endpoint_edit"),
    path("<hooks_id:pk>/credentials/", views.endpoint_credentials, name="endpoint_credentials"),
    path("<hooks_id:pk>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("<hooks_id:pk>/disable/", views.endpoint_disable, name="endpoint_disable"),
    path("<hooks_id:pk>/enable/", views.endpoint_enable, name="endpoint_enable"),
    path("<hooks_id:pk>/secret/", views.endpoint_secret, name="endpoint_secret"),
    path("<hooks_id:pk>/rotate-secret/", views.endpoint_rotate, name="endpoint_rotate"),
    path("<hooks_id:pk>/test/", views.endpoint_test, name="endpoint_test"),
    path("<hooks_id:pk>/recover/", views.endpoint_recover, name="endpoint_recover"),
    path("<hooks_id:pk>/deliveries/", views.deliveries, name="deliveries"),
    path("deliveries/<hooks_id:pk>/", views.delivery, name="delivery"),
    path("deliveries/<hooks_id:pk>/retry/", views.delivery_retry, name="delivery_retry"),
]
