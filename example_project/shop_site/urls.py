from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from shop.views import account_webhooks, github_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/hooks/", include("django_hooks.api.urls")),
    # The customer portal: behind the shop's login (API_OWNER finds the customer), or embedded
    # in the account page through a signed link.
    path("webhooks/", include("django_hooks.portal.urls")),
    path("account/webhooks/", account_webhooks, name="account-webhooks"),
    path(
        "accounts/login/",
        LoginView.as_view(
            template_name="admin/login.html", extra_context={"site_header": "Example shop"}
        ),
    ),
    path("hooks/github/", github_webhook, name="github-webhook"),
    path("receiver/", include("receiver.urls")),
]
