"""The migrations match the models, on every Django of the matrix."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_models_need_no_new_migration():
    out = StringIO()
    try:
        call_command(
            "makemigrations",
            "django_hooks",
            check=True,
            dry_run=True,
            verbosity=3,
            stdout=out,
            stderr=out,
        )
    except SystemExit:
        pytest.fail(
            "The models and django_hooks/migrations differ; `python -m django makemigrations "
            f"django_hooks --settings=tests.settings` writes the missing migration:\n{out.getvalue()}"
        )
