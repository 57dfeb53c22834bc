"""What a domain's Python code reaches outside `ctx`, found in its syntax tree.

A domain's SQL runs in the sandbox, where DuckDB enforces what it may reach. Its Python code runs
with the operating-system rights of its process, which no library can take back on one machine.
So the platform reads the code (every `*.py` of the domain's folder but `definitions.py` and its
tests) and flags what gives Python direct access to mesh storage or to the platform itself:
database and file libraries, the file and process calls of the standard library, the platform's
own modules beyond the SDK, and the escape hatches (`exec`, `__import__`, `__globals__`, ...). A
flagged domain does not load unless its descriptor declares the exception
(`code_exceptions: [{file, uses, reason}]`), so a reviewer sees each one in the descriptor. This
is a review gate, not a sandbox: the README says what a deployment adds (per-domain credentials).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# importing any of these gives Python its own way into files, databases or processes
MODULES = {
    "duckdb": "a DuckDB connection of its own",
    "sqlite3": "a database connection of its own",
    "psycopg2": "a PostgreSQL connection of its own",
    "psycopg": "a PostgreSQL connection of its own",
    "pg8000": "a PostgreSQL connection of its own",
    "asyncpg": "a PostgreSQL connection of its own",
    "adbc_driver_postgresql": "a PostgreSQL connection of its own",
    "adbc_driver_manager": "a database connection of its own",
    "sqlalchemy": "a database connection of its own",
    "pyarrow.parquet": "file access",
    "pyarrow.dataset": "file access",
    "pyarrow.csv": "file access",
    "pyarrow.json": "file access",
    "pyarrow.feather": "file access",
    "pyarrow.orc": "file access",
    "pyarrow.fs": "file access",
    "fsspec": "file access",
    "shutil": "file access",
    "glob": "file access",
    "fileinput": "file access",
    "io": "file access",
    "mmap": "file access",
    "subprocess": "other processes",
    "socket": "the network",
    "ctypes": "native code",
    "importlib": "loading code by name",
    "pickle": "loading objects from bytes",
    "marshal": "loading code from bytes",
    "builtins": "the interpreter's builtins",
}
SDK_MODULES = {"mesh_platform.sdk", "mesh_platform.sdk.ingest", "mesh_platform.sdk.reference_data"}
BUILTINS = {
    "open": "file access",
    "exec": "running code from a string",
    "eval": "running code from a string",
    "compile": "running code from a string",
    "__import__": "loading code by name",
    "breakpoint": "a debugger",
    "globals": "the module's namespace",
    "vars": "an object's namespace",
    "setattr": "changing objects by name",
    "delattr": "changing objects by name",
}
# methods that read, write or remove a file, whatever object they are called on
FILE_METHODS = {
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "open",
    "unlink",
    "rmdir",
    "symlink_to",
    "hardlink_to",
    "touch",
    "chmod",
}
# functions of modules that are fine to import but reach files or processes
MODULE_CALLS = {
    "os": {
        "open",
        "listdir",
        "scandir",
        "walk",
        "remove",
        "unlink",
        "rename",
        "replace",
        "rmdir",
        "removedirs",
        "system",
        "popen",
        "symlink",
        "link",
        "chmod",
        "chown",
        "fork",
        "execv",
        "execve",
        "execvp",
        "spawnv",
        "fdopen",
    },
    "pandas": {"read_*"},
    "polars": {"read_*", "scan_*"},
    "pyarrow": {"read_*", "memory_map", "OSFile", "input_stream", "output_stream"},
}
DUNDERS = {
    "__globals__",
    "__builtins__",
    "__subclasses__",
    "__code__",
    "__closure__",
    "__dict__",
    "__class__",
    "__mro__",
    "__bases__",
    "__getattribute__",
    "__loader__",
    "__spec__",
}


@dataclass(frozen=True)
class Finding:
    file: str  # relative to the domain's folder
    line: int
    uses: str  # the name a `code_exceptions` entry declares
    reaches: str


def _matches(name: str, patterns: set[str]) -> bool:
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.findings: list[Finding] = []
        self.aliases: dict[str, str] = {}  # local name -> module

    def flag(self, node: ast.AST, uses: str, reaches: str) -> None:
        self.findings.append(Finding(self.file, getattr(node, "lineno", 0), uses, reaches))

    def _module(self, node: ast.AST, module: str) -> None:
        for flagged, reaches in MODULES.items():
            if module == flagged or module.startswith(flagged + "."):
                self.flag(node, flagged, reaches)
                return
        if (module == "mesh_platform" or module.startswith("mesh_platform.")) and module not in SDK_MODULES:
            self.flag(node, module, "the platform's internals (a domain uses mesh_platform.sdk)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)
            top = alias.name.split(".")[0]
            self.aliases[alias.asname or top] = alias.name if alias.asname else top  # `import a.b` binds `a`
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        if node.level == 0:
            # `from a import b` may import the module a.b: judge each as a module when a is a package
            # (`from pyarrow import parquet`, `from mesh_platform import governance`), else a itself
            names = [f"{module}.{a.name}" for a in node.names] if module in ("mesh_platform", "pyarrow") else [module]
            for name in names:
                self._module(node, name)
            for alias in node.names:
                if module in MODULE_CALLS and _matches(alias.name, MODULE_CALLS[module]):
                    self.flag(node, f"{module}.{alias.name}", "file access")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in BUILTINS:
            self.flag(node, func.id, BUILTINS[func.id])
        elif isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) > 1:
            name = node.args[1]
            if not isinstance(name, ast.Constant) or str(name.value) in DUNDERS:
                self.flag(node, "getattr", "attributes by computed name")
        elif isinstance(func, ast.Attribute):
            base = func.value.id if isinstance(func.value, ast.Name) else None
            module = self.aliases.get(base or "", "")
            if module in MODULE_CALLS and _matches(func.attr, MODULE_CALLS[module]):
                self.flag(node, f"{module}.{func.attr}", "file access")
            elif func.attr in FILE_METHODS:
                self.flag(node, func.attr, "file access")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in DUNDERS:
            self.flag(node, node.attr, "the interpreter's internals")
        self.generic_visit(node)


def code_files(folder: Path) -> Iterator[Path]:
    """The domain's own Python code: what the platform imports (not `definitions.py`, not tests)."""
    for path in sorted(folder.rglob("*.py")):
        name = path.name
        if name == "definitions.py" or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
            continue
        yield path


def scan_file(path: Path, rel: str) -> list[Finding]:
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):
        return []  # reported when the code is imported (domain-code-imports)
    scanner = _Scanner(rel)
    scanner.visit(tree)
    return scanner.findings


def scan_domain(folder: Path) -> list[Finding]:
    return [f for path in code_files(folder) for f in scan_file(path, path.relative_to(folder).as_posix())]


def landing_claims(folder: Path) -> dict[str, int]:
    """Landing folders a domain's code declares (`landing="<name>"` keyword literals), with a line."""
    claims: dict[str, int] = {}
    for path in code_files(folder):
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "landing" and isinstance(node.value, ast.Constant):
                claims.setdefault(str(node.value.value), node.value.lineno)
    return claims
