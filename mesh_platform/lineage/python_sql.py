"""The SQL a domain's Python asset would run, found without running it.

A `@product` / `@internal` function returns a SELECT built from `ctx.read(...)`. The platform calls
it with a planning context: `read()` returns the relation names the step would see (`main."<own
asset>"`, `"<producer>"."<product>"` for a consumed product), and `con` is not a connection: any use
of it ends the planning. So a function that only builds SQL gives its SQL, and one that queries,
ingests files or returns rows of its own is "not analysable from its code" (its lineage may then be
declared in the descriptor). This needs no run and no data, which `mesh check-change` relies on;
capturing the SQL at run time instead would know only what the last run executed, with the code of
then. The function runs in the platform's process, as when its module is imported at load, and the
code scan (`governance.code_scan`) has vetted it before.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh_platform.sdk import AssetContext, AssetFn
from mesh_platform.sql.syntax import quote


class NoConnectionWhilePlanning(Exception):
    """The function used `ctx.con`: its SQL is not known without running it."""


class _NoConnection:
    def __getattr__(self, name: str) -> Any:
        raise NoConnectionWhilePlanning(f"it uses ctx.con.{name}")


class _PlanningContext(AssetContext):
    """`AssetContext` for planning: files are not there to read either."""

    @property
    def source_dir(self) -> Path:
        raise NoConnectionWhilePlanning("it reads its source files itself (ctx.source_dir)")

    @property
    def landing_dir(self) -> Path:
        raise NoConnectionWhilePlanning("it reads its landing folder itself (ctx.landing_dir)")


@dataclass(frozen=True)
class PlannedSql:
    sql: str | None
    reason: str | None  # why there is no SQL
    relations: dict[tuple[str, str], str]  # (schema, name) -> mesh ref, as `read()` handed them out
    file: str | None
    line: int | None


def governed_relation(ref: str) -> str:
    """What `ctx.read("<producer>.<product>")` returns in a step (see `governance.read`)."""
    producer, product = ref.split(".", 1)
    return f"{quote(producer)}.{quote(product)}"


def code_location(fn: AssetFn, root: Path) -> tuple[str | None, int | None]:
    try:
        path = Path(inspect.getsourcefile(fn.fn) or "")
        line = inspect.getsourcelines(fn.fn)[1]
    except (OSError, TypeError):
        return None, None
    try:
        return path.resolve().relative_to(root.resolve()).as_posix(), line
    except ValueError:
        return str(path), line


def plan(fn: AssetFn, domain: str, home: Path, root: Path) -> PlannedSql:
    """Call `fn` with a planning context and return the SQL it builds, or why there is none."""
    relations = {("main", r): f"{domain}.{r}" for r in fn.reads if "." not in r}
    relations |= {tuple(r.split(".", 1)): r for r in fn.reads if "." in r}  # type: ignore[misc]
    ctx = _PlanningContext(
        domain,
        fn.name,
        _NoConnection(),  # type: ignore[arg-type]
        home,
        fn.reads,
        run_id=None,
        log=logging.getLogger(f"mesh.lineage.{domain}.{fn.name}"),
        landing=fn.landing,
        governed={r: governed_relation(r) for r in fn.reads if "." in r},
    )
    file, line = code_location(fn, root)
    try:
        result = fn(ctx)
    except NoConnectionWhilePlanning as exc:
        return PlannedSql(None, str(exc), relations, file, line)
    except Exception as exc:  # the domain's code: any error means its SQL is not known
        return PlannedSql(
            None, f"calling it without a run failed: {type(exc).__name__}: {exc}"[:300], relations, file, line
        )
    if not isinstance(result, str):
        return PlannedSql(None, f"it returns {type(result).__name__}, not SQL", relations, file, line)
    return PlannedSql(result, None, relations, file, line)
