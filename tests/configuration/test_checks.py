from django.core import checks
from django.test import override_settings

from django_hooks.checks import check_settings


def ids(**overrides):
    with override_settings(**overrides):
        return sorted(message.id for message in check_settings())


def test_default_test_settings_pass():
    # tests.settings has DEBUG=False and ALLOWED_NETWORKS set: only the warning.
    assert ids() == ["django_hooks.W001"]


def test_registered_with_django():
    assert check_settings in checks.registry.registry.get_checks()


def test_each_problem_has_its_id():
    assert "django_hooks.E001" in ids(DJANGO_HOOKS={"QUEUE": "nope"})
    assert "django_hooks.E002" in ids(DJANGO_HOOKS={"ENCRYPTION_KEYS": ["not-a-key"]})
    assert "django_hooks.E003" in ids(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["10.0.0.0/33"]})
    assert "django_hooks.E004" in ids(DJANGO_HOOKS={"RETRY_SCHEDULE": [5, "soon"]})
    assert "django_hooks.E005" in ids(DJANGO_HOOKS={"QUEUES": "x"})
    assert "django_hooks.E006" in ids(DJANGO_HOOKS={"TIMEOUT": 0})
    assert ids(DEBUG=True) == []
