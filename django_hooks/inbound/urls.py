"""Receivers configured in ``DJANGO_HOOKS["INBOUND"]``, served at ``<source>/``.

path("hooks/in/", include("django_hooks.inbound.urls"))
"""

from django.urls import path

from django_hooks.inbound.views import configured_receiver

app_name = "django_hooks_inbound"
urlpatterns = [path("<slug:source>/", configured_receiver, name="receive")]
