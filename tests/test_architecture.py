"""The shape DESIGN.md asks for, enforced: import floors, module and function sizes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "layerguard"

# A module may import from its own floor or any floor below it, never from above.
FLOORS: dict[str, int] = {
    "errors": 0,
    "version": 0,
    "stats": 0,
    "progress": 0,
    "defaults": 0,
    "settings": 0,
    "data": 0,
    "models": 1,
    "activations": 2,
    "judges": 2,
    "directions": 3,
    "guard": 4,
    "train": 5,
    "redteam": 5,
    "service": 5,
    "lab": 5,
    "distributed": 5,  # Ray executors: may use redteam, train, lab; nothing below imports it
    "interop": 5,  # Inspect and garak adapters over redteam and judges; nothing below imports it
    "cli": 6,
}
# Pairs on the same floor that must still not import each other: (importer, imported).
FORBIDDEN_SIDEWAYS = {
    ("train", "redteam"),
    ("train", "service"),
    ("train", "lab"),
    ("redteam", "service"),
    ("redteam", "interop"),  # interop adapts the red team to other tools, never the reverse
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every ``layerguard.<room>`` imported anywhere in the file (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "layerguard"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "layerguard" and len(parts) > 1:
                out.append((parts[1], node.lineno))
    return out


def layering_violations() -> list[str]:
    """Import arrows against the floors, as ``file:line: room -> room``."""
    bad = []
    for path in _modules():
        room = _room(path)
        if room == "__init__" or room == "__main__":
            continue  # the package root re-exports the public API from every floor
        floor = FLOORS.get(room)
        if floor is None:
            bad.append(f"{path.relative_to(SRC)}: room {room!r} has no floor in tests/test_architecture.py")
            continue
        for target, line in _imports(path):
            if target not in FLOORS or target == room:
                continue
            if FLOORS[target] > floor or (room, target) in FORBIDDEN_SIDEWAYS:
                bad.append(f"{path.relative_to(SRC)}:{line}: {room} -> {target}")
    return bad


def test_no_import_against_the_layering():
    assert layering_violations() == []


def test_the_walker_sees_function_level_imports(tmp_path: Path):
    # a lazy import inside a function is still an arrow
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from layerguard.redteam.attacks import get_attack\n    import layerguard.service.app\n")
    assert [t for t, _ in _imports(f)] == ["redteam", "service"]


def test_every_room_has_a_floor():
    rooms = {_room(p) for p in _modules()} - {"__init__", "__main__"}
    assert rooms <= set(FLOORS), rooms - set(FLOORS)


def test_modules_are_small():
    big = {str(p.relative_to(SRC)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}


def test_functions_are_small():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


@pytest.mark.parametrize("room", ["models", "activations", "directions"])
def test_low_floors_import_nothing_above_them(room: str):
    above = {r for r, f in FLOORS.items() if f > FLOORS[room]}
    for path in (SRC / room).rglob("*.py"):
        assert not {t for t, _ in _imports(path)} & above, path
