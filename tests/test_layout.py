"""The code's shape, as the README's architecture section states it: imports go one way, objectives by name,
operators described once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from modules import OPERATORS

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = {"nas/__main__.py", "nas/search.py", "nas/export.py", "nas/report.py", "nas/verify.py"}
# nas packages from the bottom up: a module may import its own package and those of a lower or equal rank
RANK = {
    "errors": 0,
    "settings": 0,
    "ranking": 0,
    "data": 0,
    "space": 1,
    "config": 2,
    "measure": 3,
    "objectives": 3,
    "study": 4,
    "reporting": 5,
    "cli": 6,
}


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Return the absolute module names ``path`` imports (relative imports resolved against its package)."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1])  # a module's package; for __init__ the package itself
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)  # `from . import x` names a submodule
    return out


def _nas_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "nas" and parts[1] in RANK else None


def test_modules_never_import_nas() -> None:
    offenders = {p.name: sorted(m for m in _imports(p) if m.split(".")[0] == "nas") for p in _sources("modules")}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("folder", ["nas", "benchmarks"])
def test_nothing_but_the_entry_points_imports_the_clis(folder: str) -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _sources(folder)
        if not str(p.relative_to(ROOT)).startswith("nas/cli/")
        and str(p.relative_to(ROOT)) not in ENTRY_POINTS
        and any(m.startswith("nas.cli") for m in _imports(p))
    ]
    assert offenders == []


def test_nas_imports_go_down_the_layers() -> None:
    upward = []
    for p in _sources("nas"):
        own = _nas_package(".".join(p.relative_to(ROOT).with_suffix("").parts))
        if own is None or str(p.relative_to(ROOT)) in ENTRY_POINTS:
            continue
        for m in _imports(p):
            other = _nas_package(m)
            if other is not None and other != own and RANK[other] > RANK[own]:
                upward.append(f"{p.relative_to(ROOT)} -> {m}")
    assert upward == []


def test_objective_values_are_never_indexed_by_position_outside_objectives() -> None:
    pattern = re.compile(r"\.values\[|values\[[0-9]\]")
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for folder in ("nas", "benchmarks")
        for p in _sources(folder)
        if p.name != "objectives.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_no_operator_name_is_spelled_out_in_the_engine_code() -> None:
    """Operators are described once, in modules/table.py: the engine reads the table, never a name literal."""
    names = "|".join(sorted(OPERATORS, key=len, reverse=True))
    literal = re.compile(rf"[\"']({names})[\"']")
    offenders = [f"{p.relative_to(ROOT)}: {m[0]}" for p in _sources("nas") for m in literal.finditer(p.read_text())]
    assert offenders == []
