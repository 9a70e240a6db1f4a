"""Who may do what: CSRF exemption only where a signature replaces it, admin actions only with
the model's change permission. Written over whatever is registered, so new views are covered."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from django_hooks.inbound.drf import WebhookSignatureAuthentication
from django_hooks.inbound.views import configured_receiver
from django_hooks.models import Endpoint

pytestmark = pytest.mark.django_db


def url_patterns(resolver: Any = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def is_signature_receiver(view: Any) -> bool:
    """A ``@webhook_receiver`` view, or the configured-receiver view that builds one."""
    for layer in _unwrapped(view):
        if layer is configured_receiver:
            return True
        code = getattr(layer, "__code__", None)
        if code is not None and "webhook_receiver.<locals>" in code.co_qualname:
            return True
    return False


def _unwrapped(view: Any) -> Iterator[Any]:
    seen = 0
    while view is not None and seen < 20:
        yield view
        view, seen = getattr(view, "__wrapped__", None), seen + 1


def drf_view_checks_csrf_or_signature(view: Any) -> bool:
    """DRF marks every view csrf_exempt and leaves CSRF to SessionAuthentication: allowed when
    each authentication class is a signature check or a session check that still enforces CSRF."""
    cls = getattr(view, "cls", None)
    if not (inspect.isclass(cls) and issubclass(cls, APIView)):
        return False
    for auth in cls.authentication_classes:
        if issubclass(auth, WebhookSignatureAuthentication):
            continue
        if (
            issubclass(auth, SessionAuthentication)
            and auth.enforce_csrf is not SessionAuthentication.enforce_csrf
        ):
            return False
    return True


def portal_view_checks_csrf(view: Any) -> bool:
    """The customer portal's views leave the middleware to check CSRF themselves, by the way in
    (tests/portal/test_access.py posts to every one of them without and with the token)."""
    return getattr(view, "csrf_checked_by_portal", False) is True


def test_csrf_exemption_only_where_a_signature_replaces_it() -> None:
    exempt = [(route, view) for route, view in url_patterns() if getattr(view, "csrf_exempt", 0)]
    assert exempt, "no receiver found: the walk over the URLconf is broken"
    wrong = [
        route
        for route, view in exempt
        if not (
            is_signature_receiver(view)
            or drf_view_checks_csrf_or_signature(view)
            or portal_view_checks_csrf(view)
        )
    ]
    assert wrong == []
    receivers = [route for route, view in exempt if is_signature_receiver(view)]
    assert "hooks/standard/" in receivers and "hooks/in/<slug:source>/" in receivers


def test_admin_forms_need_a_csrf_token(superuser_client) -> None:
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.cookies = superuser_client.cookies
    response = csrf_client.post("/admin/django_hooks/endpoint/add/", {"url": "https://a.example"})
    assert response.status_code == 403
    assert not Endpoint.objects.exists()


def hooks_model_admins() -> list[tuple[type, admin.ModelAdmin]]:
    found = [
        (model, admin.site._registry[model])
        for model in apps.get_app_config("django_hooks").get_models()
        if model in admin.site._registry
    ]
    assert found
    return found


def staff_with(*codenames: str):
    user = get_user_model().objects.create(username="-".join(codenames) or "staff", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


@pytest.mark.parametrize(
    ("model", "model_admin"), hooks_model_admins(), ids=lambda v: getattr(v, "__name__", "")
)
def test_admin_actions_need_the_change_permission(model: type, model_admin) -> None:
    name = model._meta.model_name
    request = RequestFactory().get("/admin/")

    request.user = staff_with(f"view_{name}")
    assert model_admin.get_actions(request) == {}, "a view-only user is offered actions"

    request.user = staff_with(f"view_{name}", f"change_{name}")
    with_change = set(model_admin.get_actions(request))
    superuser = get_user_model().objects.create(username="su", is_staff=True, is_superuser=True)
    request.user = superuser
    # Everything but deleting (which needs the delete permission) comes with change.
    assert with_change == set(model_admin.get_actions(request)) - {"delete_selected"}


def test_a_view_only_user_cannot_run_an_action_by_posting_it() -> None:
    import django_hooks
    from django_hooks.models import Delivery

    names = [
        a if isinstance(a, str) else a.__name__ for a in admin.site._registry[Delivery].actions
    ]
    retry = next((name for name in names if "retry" in name), None)
    if retry is None:
        pytest.skip("the delivery admin has no retry action")
    Endpoint.objects.create(url="http://127.0.0.1:9/hook")
    django_hooks.send_event("order.paid", {"id": 1})
    Delivery.objects.update(status="failed")

    def post_retry(user) -> str:
        client = Client()
        client.force_login(user)
        pks = [str(pk) for pk in Delivery.objects.values_list("pk", flat=True)]
        client.post("/admin/django_hooks/delivery/", {"action": retry, "_selected_action": pks})
        return Delivery.objects.get().status

    assert post_retry(staff_with("view_delivery")) == "failed"
    assert post_retry(staff_with("view_delivery", "change_delivery")) == "pending"


def test_view_only_staff_see_header_names_not_their_credentials(client) -> None:
    from django_hooks.models import Endpoint

    credential = "Bearer tok_live_view_only_0123456789"
    endpoint = Endpoint.objects.create(
        url="https://customer.example/hooks", headers={"Authorization": credential}
    )
    page = f"/admin/django_hooks/endpoint/{endpoint.pk}/change/"
    client.force_login(staff_with("view_endpoint"))
    viewed = client.get(page)
    assert viewed.status_code == 200
    assert "Authorization: [hidden]" in viewed.content.decode()
    assert credential not in viewed.content.decode()
    client.force_login(staff_with("view_endpoint", "change_endpoint"))
    assert credential in client.get(page).content.decode()
