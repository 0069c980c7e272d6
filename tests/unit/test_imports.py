"""The import contract of the package, read from its source: no cycles, the CLI on top, the bottom pure.

Every import counts, at module level or inside a function (a function-level import hides a dependency
but does not remove it), except those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import maint

ROOT = Path(maint.__file__).parent
# Modules at the bottom: they import no other maint module but the ones named (errors mask URLs).
BOTTOM = {"maint.clock": [], "maint.secrets": [], "maint.errors": ["maint.secrets"]}
# The entry points above the CLI.
ENTRY = ("maint.__main__",)
# The layers, top down: a module imports only from its own layer and those below it. Everything not
# named is the bottom: the pure modules (config, inventory, playbooks, checks, executors, windows,
# alerts, stats, ...) and the lab.
LAYERS = (
    ("cli", ("maint.__main__", "maint.cli")),
    ("run", ("maint.run", "maint.schedules")),
    ("react", ("maint.tickets", "maint.reports", "maint.notify")),
    # The host locks belong to a store (their registry is named after it: maint.store.urls).
    ("store", ("maint.store", "maint.locks")),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """The maint modules ``tree`` imports when it runs (not under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "maint":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "maint")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    modules = set(paths)
    return {name: runtime_imports(ast.parse(path.read_text()), modules) - {name} for name, path in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in edges), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_cli_imports_the_cli() -> None:
    offenders = {
        name: sorted(target for target in targets if target.startswith("maint.cli"))
        for name, targets in graph().items()
        if not name.startswith("maint.cli") and name not in ENTRY
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def layer(module: str) -> int:
    """The layer of ``module``: 0 for the CLI, ... len(LAYERS) for the bottom."""
    for number, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return number
    return len(LAYERS)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = sorted(
        f"{name} -> {target}" for name, targets in graph().items() for target in targets if layer(target) < layer(name)
    )
    assert upward == []


def test_the_bottom_imports_nothing_of_maint() -> None:
    edges = graph()
    assert {name: sorted(edges[name]) for name in BOTTOM} == BOTTOM
