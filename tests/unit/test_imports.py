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
# The ledger's two halves: each imports the store's schema (the format they share) and nothing else of the store.
LEDGER_HALVES = ("maint.store.ledger_writer", "maint.store.ledger_verifier")
# The layers, top down: a module imports only from its own layer and those below it. Everything not
# named is the bottom: the pure modules (config, inventory, playbooks, checks, executors, windows,
# alerts, stats, ...) and the lab.
LAYERS = (
    ("cli", ("maint.__main__", "maint.cli")),
    ("run", ("maint.run", "maint.schedules", "maint.testing")),
    ("react", ("maint.tickets", "maint.reports", "maint.notify")),
    # The host locks belong to a store (their registry is named after it: maint.store.urls).
    ("store", ("maint.store", "maint.locks")),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_statements(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree`` that run (not under ``if TYPE_CHECKING:``)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def runtime_imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """The maint modules ``tree`` imports when it runs (not under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()
    for node in import_statements(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "maint":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "maint")
    return found


def packages(tree: ast.AST) -> set[str]:
    """The top-level packages ``tree`` imports when it runs (``sqlalchemy`` for ``from sqlalchemy.engine ...``)."""
    found: set[str] = set()
    for node in import_statements(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def trees() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text()) for path in ROOT.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    parsed = trees()
    modules = set(parsed)
    return {name: runtime_imports(tree, modules) - {name} for name, tree in parsed.items()}


def in_store(module: str) -> bool:
    return module == "maint.store" or module.startswith("maint.store.")


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


def test_only_the_store_imports_sqlalchemy() -> None:
    users = sorted(name for name, tree in trees().items() if not in_store(name) and "sqlalchemy" in packages(tree))
    assert users == []


def uses_engine(tree: ast.AST) -> bool:
    """Whether ``tree`` reaches for an ``engine`` attribute (the store's SQLAlchemy engine)."""
    return any(isinstance(node, ast.Attribute) and node.attr == "engine" for node in ast.walk(tree))


def test_only_the_store_uses_its_engine() -> None:
    users = {name for name, tree in trees().items() if not in_store(name) and uses_engine(tree)}
    assert users == set()


def test_the_ledger_writer_and_verifier_share_only_the_schema() -> None:
    edges = graph()
    for half in LEDGER_HALVES:
        assert sorted(target for target in edges[half] if in_store(target)) == ["maint.store.schema"], half
        # Beyond the store, only the pure modules at the bottom.
        assert [target for target in edges[half] if not in_store(target) and layer(target) < len(LAYERS)] == [], half


def test_the_import_finders_see_what_runs() -> None:
    tree = ast.parse(
        "import sqlalchemy.engine\nfrom maint.store import ledger\nfrom . import sibling\n"
        "if TYPE_CHECKING:\n    import paramiko\n"
        "def later():\n    from jinja2 import Template\n"
    )
    assert packages(tree) == {"sqlalchemy", "maint", "jinja2"}
    assert runtime_imports(tree, {"maint.store", "maint.store.ledger"}) == {"maint.store.ledger"}


def test_in_the_run_only_react_knows_tickets() -> None:
    # A run's parts record results; what tickets follow from them is maint.run.react's alone.
    edges = graph()
    knowing = sorted(
        name for name, targets in edges.items()
        if name.startswith("maint.run") and any(target.startswith("maint.tickets") for target in targets)
    )  # fmt: skip
    assert knowing == ["maint.run.react"]
