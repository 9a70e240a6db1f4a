"""``path("api/hooks/", include("django_hooks.api.urls"))``"""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.routers import DefaultRouter

from django_hooks.api import views
from django_hooks.api.schema import schema_view

app_name = "django_hooks_api"


class Router(DefaultRouter):
    """DRF's router with an owner-scoped API root that also links the feed and the schema."""

    include_format_suffixes = False  # the routes stay as documented, without ".json" twins
    APIRootView = views.APIRoot

    def get_api_root_view(self, api_urls: Any = None) -> Any:
        links = {prefix: f"{basename}-list" for prefix, _, basename in self.registry}
        links.update(
            {"events/feed": "event-feed", "events/stream": "event-stream", "schema": "schema"}
        )
        return self.APIRootView.as_view(api_root_dict=links)


router = Router()
router.register("endpoints", views.EndpointViewSet, basename="endpoint")
router.register("event-types", views.EventTypeViewSet, basename="event-type")
router.register("events", views.EventViewSet, basename="event")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")

urlpatterns = [path("schema/", schema_view(), name="schema"), *router.urls]
