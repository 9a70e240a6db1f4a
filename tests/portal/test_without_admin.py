"""The portal serves a site that does not install django.contrib.admin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django_hooks.models import Endpoint
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user("alice")
endpoint = Endpoint(url="http://127.0.0.1:9/hook")
endpoint.owner = user
endpoint.save()
client = Client()
client.force_login(user)
for path in ("", f"{endpoint.pk}/", f"{endpoint.pk}/deliveries/"):
    response = client.get("/webhooks/" + path)
    assert response.status_code == 200, (path, response.status_code)
print("served")
"""


def test_the_portal_needs_no_admin():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.portal.without_admin",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("served")
