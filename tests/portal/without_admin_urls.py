from django.urls import include, path

urlpatterns = [path("webhooks/", include("django_hooks.portal.urls"))]
