import logging
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_hooks.checks import check_security, check_settings

ROOT = Path(__file__).resolve().parents[2]
VALID_RECEIVER = {
    "provider": "standard",
    "secret": "whsec_x",
    "handler": "tests.testapp.views.on_configured",
}


def messages(**overrides):
    with override_settings(**overrides):
        return [*check_settings(), *check_security()]


def ids(**overrides):
    return sorted(message.id for message in messages(**overrides))


def hooks(**values):
    """Settings that leave out the test settings' ALLOWED_NETWORKS (and so W001)."""
    return {"DJANGO_HOOKS": values}


def test_default_test_settings_pass():
    # tests.settings has DEBUG=False and ALLOWED_NETWORKS set: only the warning.
    assert ids() == ["django_hooks.W001"]


def test_registered_with_django():
    registered = checks.registry.registry.get_checks()
    assert check_settings in registered and check_security in registered


def test_each_problem_has_its_id():
    assert "django_hooks.E001" in ids(DJANGO_HOOKS={"QUEUE": "nope"})
    assert "django_hooks.E002" in ids(DJANGO_HOOKS={"ENCRYPTION_KEYS": ["not-a-key"]})
    assert "django_hooks.E003" in ids(DJANGO_HOOKS={"ALLOWED_NETWORKS": ["10.0.0.0/33"]})
    assert "django_hooks.E004" in ids(DJANGO_HOOKS={"RETRY_SCHEDULE": [5, "soon"]})
    assert "django_hooks.E005" in ids(DJANGO_HOOKS={"QUEUES": "x"})
    assert "django_hooks.E006" in ids(DJANGO_HOOKS={"TIMEOUT": 0})
    assert ids(DEBUG=True) == []


def test_an_unknown_key_suggests_the_known_one():
    (error,) = messages(DJANGO_HOOKS={"TIMOUT": 3})
    assert error.id == "django_hooks.E005" and error.level == checks.ERROR
    assert "'TIMOUT' (did you mean 'TIMEOUT'?)" in error.msg
    (error,) = messages(DJANGO_HOOKS={"COLOUR": "blue"})
    assert "'COLOUR'" in error.msg and "Known keys: ALLOWED_NETWORKS" in error.msg
    (error,) = messages(DJANGO_HOOKS=["TIMEOUT"])
    assert error.id == "django_hooks.E005" and "must be a dict" in error.msg


def test_manage_py_check_reports_an_unknown_key_instead_of_a_traceback(tmp_path):
    (tmp_path / "typo_settings.py").write_text(
        "from tests.settings import *\nDJANGO_HOOKS = {'TIMOUT': 3}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=ROOT,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "DJANGO_SETTINGS_MODULE": "typo_settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "(django_hooks.E005) Unknown DJANGO_HOOKS key(s): 'TIMOUT' (did you mean" in (
        result.stderr
    )


def test_django_rq_must_be_installed(settings):
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "django_rq"]
    assert ids(**hooks()) == ["django_hooks.E008"]


@pytest.mark.parametrize(
    "receiver,problem",
    [
        ({**VALID_RECEIVER, "provider": "gitlab"}, "unknown webhook provider 'gitlab'"),
        ({**VALID_RECEIVER, "handler": "tests.nowhere.view"}, "cannot be imported"),
        ({**VALID_RECEIVER, "handler": "tests.testapp.views.SECRET"}, "is not callable"),
        ({**VALID_RECEIVER, "secret": ""}, "secret must be a non-empty string"),
        ({**VALID_RECEIVER, "secret": ["whsec_x", None]}, "secret must be a non-empty string"),
        ({**VALID_RECEIVER, "tolerance": -1}, "tolerance must be a whole number"),
        ({**VALID_RECEIVER, "run_async": "yes"}, "run_async must be True or False"),
        ({**VALID_RECEIVER, "max_body_bytes": 0}, "max_body_bytes must be a positive"),
        ({**VALID_RECEIVER, "colour": "blue"}, "unknown option(s) colour"),
        ({"provider": "github"}, "secret, handler missing"),
        ("github", "must be a dict"),
    ],
)
def test_inbound_receivers_are_checked(receiver, problem):
    (error,) = messages(**hooks(INBOUND={"shop": receiver}))
    assert error.id == "django_hooks.E009"
    assert error.msg.startswith("DJANGO_HOOKS['INBOUND']['shop']: ") and problem in error.msg


def test_an_inbound_name_must_be_reachable_in_the_url():
    (error,) = messages(**hooks(INBOUND={"git hub": VALID_RECEIVER}))
    assert error.id == "django_hooks.E009" and "letters, digits" in error.msg
    assert ids(**hooks(INBOUND={"git-hub_2": VALID_RECEIVER})) == []


def test_a_secret_is_never_quoted_in_a_check(settings):
    secret = "whsec_do-not-print-me"
    receiver = {**VALID_RECEIVER, "secret": secret, "provider": "nope"}
    found = messages(**hooks(INBOUND={"shop": receiver}))
    assert found and all(secret not in f"{m.msg} {m.hint}" for m in found)
    password = "pr0xy-pa55word"
    found = messages(**hooks(PROXY=f"ftp://user:{password}@proxy.internal:21"))
    assert found and all(password not in f"{m.msg} {m.hint}" for m in found)


def test_api_owner_is_checked():
    (error,) = messages(**hooks(API_OWNER="tests.nowhere.owner"))
    assert error.id == "django_hooks.E010" and "API_OWNER" in error.msg
    (error,) = messages(**hooks(API_OWNER=42))
    assert error.id == "django_hooks.E010" and "callable" in error.msg


@pytest.mark.parametrize(
    "label,options,problem",
    [
        ("testapp.Nope", {}, "doesn't have a 'Nope' model"),
        ("Order", {}, "not a model label"),
        ("testapp.Order", {"prefix": "bad prefix!"}, "not a valid event type"),
        ("testapp.Order", {"serializer": "tests.nowhere.Serializer"}, "tests.nowhere"),
        ("testapp.Order", {"actions": ["created", "paid"]}, "Unknown model event action(s): paid"),
        ("testapp.Order", {"colour": "blue"}, "unknown option(s) colour"),
        ("testapp.Order", "order", "must be a dict"),
    ],
)
def test_model_events_are_checked(label, options, problem):
    (error,) = messages(**hooks(MODEL_EVENTS={label: options}))
    assert error.id == "django_hooks.E011" and problem in error.msg, error.msg


def test_a_bad_model_events_entry_is_logged_not_raised_at_start_up(caplog):
    from django.db.models.signals import post_save

    from django_hooks.outbound.dispatch import connect_model_events_setting
    from tests.testapp.models import Order

    setting = {"testapp.Nope": {}, "testapp.Order": {"prefix": "order"}}
    with override_settings(DJANGO_HOOKS={"MODEL_EVENTS": setting}):
        connect_model_events_setting()  # what ready() runs: it must not raise
    try:
        assert "django_hooks.E011" in caplog.text and "'testapp.Nope'" in caplog.text
        assert any(r.levelno == logging.ERROR for r in caplog.records)
        assert post_save.has_listeners(Order)  # the good entry is still connected
    finally:
        post_save.disconnect(sender=Order, dispatch_uid="django_hooks:testapp.Order:save")


def test_event_types_are_checked():
    (error,) = messages(**hooks(EVENT_TYPES={"order.paid": {"descr": "x"}}))
    assert error.id == "django_hooks.E012" and "order.paid" in error.msg
    (error,) = messages(**hooks(EVENT_TYPES="order.paid"))
    assert error.id == "django_hooks.E012"
    assert ids(**hooks(EVENT_TYPES=["order.paid"])) == []


@pytest.mark.parametrize(
    "proxy,problem",
    [
        ({"https": "http://proxy:3128"}, "must be one proxy URL"),
        ("proxy:3128", "must start with one of http://"),  # requests reads "proxy" as a scheme
        ("ftp://proxy.internal:21", "must start with one of http://"),
        ("http://", "names no host"),
        ("http://proxy:port", "is not a URL"),
    ],
)
def test_the_proxy_is_checked(proxy, problem):
    (error,) = messages(**hooks(PROXY=proxy))
    assert error.id == "django_hooks.E013" and problem in error.msg


def test_good_proxies_pass():
    good = (None, "http://proxy.internal:3128", "https://user:pw@proxy:443", "proxy.internal:3128")
    for proxy in good:
        assert ids(**hooks(PROXY=proxy)) == [], proxy


def test_the_private_networks_warning_is_a_security_check():
    assert "django_hooks.W001" in ids()
    with pytest.raises(SystemCheckError):  # not silenced: shown by --tag security and --deploy
        call_command("check", tags=["security"], fail_level="WARNING")
    found = checks.run_checks(tags=[checks.Tags.security])
    assert "django_hooks.W001" in [message.id for message in found]
    found = checks.run_checks(tags=[checks.Tags.compatibility])
    assert "django_hooks.W001" not in [message.id for message in found]
