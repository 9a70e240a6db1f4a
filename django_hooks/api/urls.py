"""``path("api/hooks/", include("django_hooks.api.urls"))``"""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from django_hooks.api import views
from django_hooks.api.schema import schema_view

app_name = "django_hooks_api"

router = SimpleRouter()
router.register("endpoints", views.EndpointViewSet, basename="endpoint")
router.register("event-types", views.EventTypeViewSet, basename="event-type")
router.register("events", views.EventViewSet, basename="event")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")

urlpatterns = [path("schema/", schema_view(), name="schema"), *router.urls]
