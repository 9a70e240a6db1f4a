"""docs/python-api.md and the code agree: each name listed there is importable and in its
module's ``__all__``, each ``__all__`` name is listed, and every module declares ``__all__``."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "python-api.md"
PACKAGE = ROOT / "django_hooks"
SECTION = re.compile(r"^## `(?P<module>[\w.]+)`\n(?P<body>.*?)(?=^## |\Z)", re.M | re.S)
BULLET_NAME = re.compile(r"`(\w+)`")


def documented() -> dict[str, set[str]]:
    modules = {}
    for section in SECTION.finditer(PAGE.read_text()):
        bullets = [line for line in section["body"].splitlines() if line.startswith(("- ", "  "))]
        # The names a bullet lists come before its explanation (": ..." or "(...)").
        listed = [re.split(r": | \(", line, maxsplit=1)[0] for line in bullets]
        modules[section["module"]] = {name for line in listed for name in BULLET_NAME.findall(line)}
    return modules


DOCUMENTED = documented()


@pytest.mark.parametrize("module", sorted(DOCUMENTED))
def test_each_listed_name_is_the_modules_supported_api(module):
    imported = importlib.import_module(module)
    exported = set(imported.__all__)
    for name in DOCUMENTED[module]:
        assert hasattr(imported, name), f"{module}.{name} is listed but does not exist"
    assert DOCUMENTED[module] == exported, (
        f"{module}: listed but not in __all__: {sorted(DOCUMENTED[module] - exported)}; "
        f"in __all__ but not listed: {sorted(exported - DOCUMENTED[module])}"
    )


def modules_of_the_package():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        if "migrations" in relative.parts or "management" in relative.parts:
            continue
        if path.name in ("urls.py", "apps.py") or (
            path.name == "__init__.py" and path.parent.name in ("internal", "core", "outbound")
        ):
            continue
        yield ".".join(relative.parts).removesuffix(".__init__"), path


@pytest.mark.parametrize(("module", "path"), list(modules_of_the_package()), ids=lambda v: str(v))
def test_every_module_says_what_it_supports(module, path):
    tree = ast.parse(path.read_text())
    declared = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and "__all__"
        in [
            getattr(t, "id", None)
            for t in getattr(node, "targets", [getattr(node, "target", None)])
        ]
    ]
    assert declared, f"{module} has no __all__ (empty if nothing in it is supported API)"
    exported = ast.literal_eval(declared[0].value)
    if exported:
        assert module in DOCUMENTED, f"{module} exports {exported} but docs/python-api.md omits it"
    internal = module.startswith("django_hooks.internal")
    assert not (internal and exported), f"{module} is internal: its __all__ must be empty"
