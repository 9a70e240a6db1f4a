from django.contrib import admin
from django.urls import include, path
from shop.views import github_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/hooks/", include("django_hooks.api.urls")),
    path("hooks/github/", github_webhook, name="github-webhook"),
    path("receiver/", include("receiver.urls")),
]
