import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_hooks.conf import DEFAULTS, hooks_settings


def test_defaults_apply_for_missing_keys():
    assert hooks_settings.QUEUE == "default"
    assert DEFAULTS["DISABLE_AFTER"] == hooks_settings.DISABLE_AFTER


def test_override_settings_takes_effect_and_is_undone():
    assert hooks_settings.TIMEOUT == 2
    with override_settings(DJANGO_HOOKS={"TIMEOUT": 7}):
        assert hooks_settings.TIMEOUT == 7
        assert DEFAULTS["RETRY_SCHEDULE"] == hooks_settings.RETRY_SCHEDULE
    assert hooks_settings.TIMEOUT == 2


def test_unknown_keys_are_an_error_naming_them():
    with (
        override_settings(DJANGO_HOOKS={"TIMEOUTS": 3}),
        pytest.raises(ImproperlyConfigured, match="Unknown DJANGO_HOOKS key.*TIMEOUTS"),
    ):
        hooks_settings.TIMEOUT  # noqa: B018


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        hooks_settings.NOT_A_SETTING  # noqa: B018
