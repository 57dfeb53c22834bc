"""The package's import graph: no module imports, at import time, a module that imports it back,
and nothing below the command line imports the command line (the CLI is the top of the graph: the
run path once looped `cli/app -> cli/run -> run_scheduler -> warm -> cli/app`).

The layout: every folder of `mesh_platform/` and `devtools/` is a package whose docstring says what
it may not import ("Must not import: `a`, `b`" or "May import only: `a`, `b`", names relative to
`mesh_platform`, `devtools` itself); `RULES` holds the same rules as data, the docstrings must state
them, and every import (in functions too) must keep them. Production code never imports
`devtools`: only the `mesh seed` and `mesh emit` verbs do, inside the verb."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = (ROOT / "mesh_platform", ROOT / "devtools")
DEVTOOLS = "devtools"
DEVTOOLS_VERBS = {"mesh_platform.cli.seed", "mesh_platform.cli.emit"}  # may import devtools inside the verb

# package -> ("not", forbidden) or ("only", allowed): names relative to mesh_platform, or `devtools`
RULES: dict[str, tuple[str, frozenset[str]]] = {
    "sql": ("only", frozenset()),
    "descriptor": ("only", frozenset({"sql", "text", "governance.masking"})),
    "project": ("only", frozenset({"descriptor", "sql", "text", "governance.masking"})),
    "sdk": ("only", frozenset({"sql"})),
    "storage": ("only", frozenset({"project", "descriptor", "sql", "text"})),
    "upstream": ("only", frozenset()),
    "governance": (
        "not",
        frozenset(
            {"cli", "defs", "checks", "contracts", "catalog", "lineage", "orchestration", "scaffold", "sdk"}
            | {"upstream", DEVTOOLS}
        ),
    ),
    "pg_warehouse": (
        "not",
        frozenset(
            {"cli", "defs", "checks", "contracts", "catalog", "lineage", "orchestration", "scaffold", "sdk"}
            | {"upstream", DEVTOOLS}
        ),
    ),
    "checks": (
        "not",
        frozenset(
            {"cli", "defs", "contracts", "catalog", "lineage", "orchestration", "scaffold", "storage"}
            | {"pg_warehouse", DEVTOOLS}
        ),
    ),
    "orchestration": (
        "not",
        frozenset(
            {"cli", "defs", "checks", "contracts", "catalog", "governance", "lineage", "pg_warehouse"}
            | {"scaffold", "sdk", DEVTOOLS}
        ),
    ),
    "lineage": (
        "not",
        frozenset({"cli", "catalog", "checks", "contracts", "governance", "orchestration", "scaffold", DEVTOOLS}),
    ),
    "defs": ("not", frozenset({"cli", "catalog", "scaffold", DEVTOOLS})),
    "contracts": ("not", frozenset({"cli", "catalog", "orchestration", DEVTOOLS})),
    "scaffold": ("not", frozenset({"cli", "catalog", "orchestration", DEVTOOLS})),
    "catalog": ("not", frozenset({"cli", "contracts", "scaffold", "orchestration", DEVTOOLS})),
    "cli": ("not", frozenset({DEVTOOLS})),  # but DEVTOOLS_VERBS, inside the verb
    DEVTOOLS: ("not", frozenset({"cli"})),
    f"{DEVTOOLS}.seed": ("not", frozenset({"cli"})),
}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _short(module: str) -> str:
    """`mesh_platform.governance.masking` -> `governance.masking`; devtools keeps its name."""
    return module.removeprefix("mesh_platform.") if module != "mesh_platform" else module


def _package_of(module: str, packages: set[str]) -> str:
    while module not in packages:
        module = module.rpartition(".")[0]
    return module


def _matches(target: str, names: frozenset[str]) -> bool:
    short = _short(target)
    return any(short == n or short.startswith(n + ".") for n in names)


def _rule_offences(
    imports: dict[str, set[str]], package_of: dict[str, str], rules: dict[str, tuple[str, frozenset[str]]]
) -> list[str]:
    """Imports (module -> imported modules) that break their package's rule."""
    offences = []
    for module, targets in sorted(imports.items()):
        package = package_of[module]
        kind, names = rules[_short(package)]
        for target in sorted(targets):
            if package_of.get(target) == package or target == "mesh_platform":
                continue
            broken = _matches(target, names) if kind == "not" else not _matches(target, names)
            if broken and not (_short(package) == "cli" and module in DEVTOOLS_VERBS):
                offences.append(f"{module} -> {target}")
    return offences


def _declared_rule(docstring: str) -> tuple[str, frozenset[str]] | None:
    """The rule a package's docstring states: the backticked names after "Must not import:" or
    "May import only:", up to the first `;`, `(`, ` except` or end of sentence."""
    found = re.search(r"(Must not import|May import only):(.*?)(?:;|\(|\bexcept\b|\.\s|\.$)", docstring, re.S)
    if found is None:
        return None
    kind = "not" if found.group(1) == "Must not import" else "only"
    return kind, frozenset(re.findall(r"`([\w.]+)`", found.group(2)))


def _all_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every import of each module, in functions too."""
    result = {}
    for name, path in modules.items():
        nodes = [n for n in ast.walk(_tree(path)) if isinstance(n, ast.Import | ast.ImportFrom)]
        result[name] = _imported(name, path, modules, nodes)
    return result


def _imported(name: str, path: Path, modules: dict[str, Path], nodes: list[ast.stmt]) -> set[str]:
    """The package's modules that `nodes` import (a name imported from a package counts as its module)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in nodes:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _import_time_graph() -> dict[str, set[str]]:
    """Imports run when each module is imported: its top level (not functions, not TYPE_CHECKING)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        body = _tree(path).body
        top = [n for n in body if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))]
        graph[name] = _imported(name, path, modules, top)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_import_time_graph()) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_below_the_command_line_imports_it() -> None:
    """Anywhere in a module, functions included: the command line is only ever the caller."""
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if name.startswith("mesh_platform.cli"):
            continue
        nodes = [n for n in ast.walk(_tree(path)) if isinstance(n, ast.Import | ast.ImportFrom)]
        imported = _imported(name, path, modules, nodes)
        offenders += [f"{name} -> {target}" for target in imported if target.startswith("mesh_platform.cli")]
    assert offenders == []


def _packages() -> dict[str, Path]:
    return {name: path for name, path in _modules().items() if path.name == "__init__.py"}


def test_every_folder_of_code_is_a_package_with_a_docstring() -> None:
    folders = {path.parent for package in PACKAGES for path in package.rglob("*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())
    assert missing == []
    undocumented = [name for name, path in _packages().items() if not ast.get_docstring(_tree(path))]
    assert undocumented == []


def test_each_package_docstring_states_its_rule() -> None:
    stated = {}
    for name, path in _packages().items():
        if name == "mesh_platform":
            continue
        stated[_short(name)] = _declared_rule(ast.get_docstring(_tree(path)) or "")
    assert stated == RULES


def test_each_package_keeps_its_import_rule() -> None:
    modules = _modules()
    packages = set(_packages())
    package_of = {name: _package_of(name, packages) for name in modules}
    imports = {name: targets for name, targets in _all_imports(modules).items() if package_of[name] != "mesh_platform"}
    assert _rule_offences(imports, package_of, RULES) == []


def test_production_never_imports_devtools() -> None:
    """Anywhere in `mesh_platform`; the two development verbs only inside the verb, never at import time."""
    modules = _modules()
    offenders = []
    for name, targets in _all_imports(modules).items():
        imports_devtools = any(t.startswith(DEVTOOLS) for t in targets)
        if name.startswith("mesh_platform") and imports_devtools and name not in DEVTOOLS_VERBS:
            offenders.append(name)
    assert offenders == []
    at_import = _import_time_graph()
    assert [v for v in DEVTOOLS_VERBS if any(t.startswith(DEVTOOLS) for t in at_import[v])] == []


@pytest.mark.parametrize(
    ("module", "target", "broken"),
    [
        ("mesh_platform.sql.syntax", "mesh_platform.storage.product_store", True),
        ("mesh_platform.governance.read", "mesh_platform.cli.app", True),
        ("mesh_platform.descriptor.model", "mesh_platform.governance.audit", True),
        ("mesh_platform.descriptor.model", "mesh_platform.governance.masking", False),
        ("mesh_platform.descriptor.model", "mesh_platform.descriptor.reserved_words", False),
        ("mesh_platform.checks.evaluate", "devtools.seed", True),
        ("mesh_platform.cli.emit", "devtools.appointment_feed", False),
        ("mesh_platform.cli.read", "devtools.appointment_feed", True),
    ],
)
def test_the_rule_check_sees_a_forbidden_import(module: str, target: str, broken: bool) -> None:
    package_of = {name: name.rpartition(".")[0] for name in (module, target)}
    assert _rule_offences({module: {target}}, package_of, RULES) == ([f"{module} -> {target}"] if broken else [])


def test_the_docstring_rule_is_read_as_written() -> None:
    assert _declared_rule("Owns x.\n\nMust not import: `cli`, `defs`; the reason.") == (
        "not",
        frozenset({"cli", "defs"}),
    )
    assert _declared_rule("May import only: `sql`, `governance.masking` (why).") == (
        "only",
        frozenset({"sql", "governance.masking"}),
    )
    assert _declared_rule("Must not import: `devtools`, except `seed` and `emit`, inside the verb.") == (
        "not",
        frozenset({"devtools"}),
    )
    assert _declared_rule("No rule here.") is None
