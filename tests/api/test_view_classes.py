"""A project can subclass the API's viewsets with its own authentication and permission classes;
the owner requirement stays."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.permissions import IsAdminUser
from rest_framework.test import APIClient

from django_hooks.api.views import EndpointViewSet

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


class StaffTokenEndpoints(EndpointViewSet):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAdminUser]


urlpatterns = [
    path("staff/endpoints/", StaffTokenEndpoints.as_view({"get": "list"})),
    path("default/endpoints/", EndpointViewSet.as_view({"get": "list"})),
    path(
        "as-view/endpoints/",
        EndpointViewSet.as_view({"get": "list"}, permission_classes=[IsAdminUser]),
    ),
]


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", is_staff=True)


def test_a_subclass_authenticates_with_its_own_classes(alice, staff):
    session = APIClient()
    session.force_login(staff)  # the project default (sessions) is not what the subclass takes
    refused = session.get("/staff/endpoints/")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"
    assert token_client(staff).get("/staff/endpoints/").status_code == 200


def test_a_subclass_checks_its_own_permissions(alice, staff):
    assert token_client(alice).get("/staff/endpoints/").status_code == 403
    assert token_client(staff).get("/staff/endpoints/").status_code == 200


def test_an_owner_is_still_required(staff):
    with override_settings(DJANGO_HOOKS={"API_OWNER": "tests.api.test_authorization.nobody"}):
        assert token_client(staff).get("/staff/endpoints/").status_code == 403


def test_as_view_arguments_are_honoured_too(alice, as_alice):
    assert as_alice.get("/as-view/endpoints/").status_code == 403
    assert as_alice.get("/default/endpoints/").status_code == 200
