"""Imports flow down: the library never imports the CLI, nor another subpackage's privates.

Every module under ``src/ri2fl`` is parsed (not imported), so imports inside functions count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import ri2fl

PACKAGE = Path(ri2fl.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> list[str]:
    """``ri2fl/infer/engine.py`` -> ["ri2fl", "infer", "engine"] (a package: its folder)."""
    parts = ["ri2fl", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path, source: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line, absolute dotted name) of every module or name that ``path`` imports."""
    me = _dotted(path)
    package = me if path.name == "__init__.py" else me[:-1]
    source = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                yield node.lineno, [*module, alias.name]


def _subpackage(path: Path) -> str | None:
    """``infer`` for ``ri2fl/infer/...``; None for ``ri2fl/__init__.py`` and ``ri2fl/demo.py``."""
    dotted = _dotted(path)
    return dotted[1] if len(dotted) > 1 and (PACKAGE / dotted[1]).is_dir() else None


def _cli_imports(path: Path, source: str | None = None) -> list[str]:
    if _subpackage(path) == "cli":
        return []
    return [f"line {line}: {'.'.join(name)}" for line, name in _imports(path, source)
            if name[:2] == ["ri2fl", "cli"]]


def _private_imports(path: Path, source: str | None = None) -> list[str]:
    """Imports of an underscore module or name below another subpackage (``ri2fl.x._y``).

    ri2fl's own top-level modules (``ri2fl._atomic``) are shared by every subpackage.
    """
    mine, bad = _subpackage(path), []
    for line, name in _imports(path, source):
        if name[0] != "ri2fl" or len(name) < 3 or name[1] == mine:
            continue
        if any(p.startswith("_") and not p.startswith("__") for p in name[2:]):
            bad.append(f"line {line}: {'.'.join(name)}")
    return bad


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_library_never_imports_the_cli(path):
    assert not _cli_imports(path), f"{path.name} imports the CLI"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_module_or_name_of_another_subpackage(path):
    bad = _private_imports(path)
    assert not bad, f"{path.name} imports privates of another subpackage: {bad}"


def test_the_checks_catch_what_they_forbid():
    train = PACKAGE / "train" / "cells.py"
    assert _private_imports(train, "def f():\n    from ..segment._grid import resize\n")
    assert _private_imports(train, "from ri2fl.infer.engine import _as_prediction\n")
    assert not _private_imports(train, "from ..segment import resize\nfrom .._atomic import x\n")
    assert not _private_imports(PACKAGE / "io" / "__init__.py", "from ._checks import x\n")
    assert _cli_imports(PACKAGE / "demo.py", "from .cli.profile import write_table\n")
    assert _cli_imports(PACKAGE / "demo.py", "import ri2fl.cli.main\n")
    assert not _cli_imports(PACKAGE / "cli" / "predict.py", "from ._common import x\n")
