from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hooks/standard/", views.standard),
    path("hooks/rotating/", views.rotating),
    path("hooks/by-tenant/", views.by_tenant),
    path("hooks/tenants/", views.tenants),
    path("hooks/github/", views.github),
    path("hooks/flaky/", views.flaky),
    path("hooks/flaky-github/", views.flaky_github),
    path("hooks/later/", views.later),
    path("hooks/small/", views.small),
    path("hooks/api-github/", views.GitHubAPIHook.as_view()),
    path("hooks/in/", include("django_hooks.inbound.urls")),
    path("api/hooks/", include("django_hooks.api.urls")),
    path("webhooks/", include("django_hooks.portal.urls")),
]
