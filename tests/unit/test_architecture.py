"""The package's shape, checked: no import cycle (imports inside functions included),
functions short enough to read whole, the one name the entry point keeps a copy of, and
the public names. The layers themselves are import-linter's contracts in pyproject.toml
(`lint-imports`, run by .ci/run)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_torchci"

# Functions that read better whole, with why (see docs/architecture.md).
LONG_ALLOWED: dict[str, str] = {}
MAX_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (they never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            for inner in node.body:  # type: ignore[attr-defined]
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its code."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.lineno in skip:
                continue
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("pytest_torchci"):
                target = node.module
            else:
                continue
            for candidate in [target, *(f"{target}.{a.name}" for a in node.names)]:
                if candidate in modules and candidate != name:
                    graph[name].add(candidate)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def _long_functions() -> dict[str, int]:
    found = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES:
                    found[f"{name}.{node.name}"] = length
    return found


def test_functions_are_short_enough_to_read_whole() -> None:
    long = {k: v for k, v in _long_functions().items() if k not in LONG_ALLOWED}
    assert not long, f"functions over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("layer", ["data", "plan", "run", "devices", "scale", "plugin", "cli"])
def test_each_layer_says_what_it_owns(layer: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
    assert doc and "import" in doc.lower(), f"{layer}/__init__.py: say what it owns and may import"


def test_the_token_variable_is_spelled_once() -> None:
    """The entry point keeps its own copy of the item token's name (importing the reaper
    would slow every plain pytest run); the two must never drift apart."""
    from pytest_torchci import plugin
    from pytest_torchci.run import reaper

    assert plugin._TOKEN_VARIABLE == reaper.TOKEN_VARIABLE


def test_every_public_name_is_importable_and_typed() -> None:
    """The package's names are imported on first use (its __getattr__): each one that
    __all__ lists must be found where the table says, and be what the type checker sees."""
    import pytest_torchci

    assert set(pytest_torchci.__all__) == set(pytest_torchci._WHERE)
    for name in pytest_torchci.__all__:
        value = getattr(pytest_torchci, name)
        module = importlib.import_module(pytest_torchci._WHERE[name], "pytest_torchci")
        assert value is getattr(module, name)
        if callable(value):  # (a dataclass without one gets its signature as __doc__)
            doc = value.__doc__ or ""
            assert doc and not doc.startswith(f"{name}("), f"{name} has no docstring"
