import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_imports_no_django():
    code = (
        "import sys, pkgutil, importlib, django_hooks.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__): importlib.import_module('django_hooks.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'django' or n.startswith(('django.', 'requests', 'rest_framework')))\n"
        "print(len(list(pkgutil.iter_modules(core.__path__))), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[0]) >= 6  # every core module was imported
