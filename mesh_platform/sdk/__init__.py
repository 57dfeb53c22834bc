"""What a domain's Python code uses: `@product`, `@internal` and the context they receive.

Domain code never builds Dagster definitions or repeats descriptor facts: the platform turns
each decorated function into an asset with its key, owner, group, metadata, checks and
write-audit-publish (see `mesh_platform.defs`).

    from mesh_platform.sdk import AssetContext, product

    @product("sites", reads=["raw_sites"])
    def sites(ctx: AssetContext) -> str:
        return f"select * from {ctx.read('raw_sites')}"

A function returns a SELECT statement (or a pyarrow Table / DuckDB relation) that the platform
writes to the domain's warehouse, or an `Ingested` summary when it wrote tables itself.

Owns: the decorators and context (here), ingestion with quarantine (`ingest`) and the reference
data domains share (`reference_data`): the only platform modules domain code may import
(`governance.code_scan`).

May import only: `sql`; the SDK is what domain code sees, so it drags in no Dagster definitions,
storage or governance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from mesh_platform.sdk.landing import WHY_SKIPPED as WHY_SKIPPED  # re-exported for domain code
from mesh_platform.sdk.landing import LandingListing, landing_files
from mesh_platform.sql.syntax import quote


@dataclass(frozen=True)
class AssetFn:
    name: str
    fn: Callable[[AssetContext], Any]
    role: Literal["product", "internal"]
    reads: tuple[str, ...] = ()
    description: str | None = None
    landing: str | None = None
    major: int | None = None  # an older major of product `name`, built next to the latest

    def __call__(self, ctx: AssetContext) -> Any:
        return self.fn(ctx)


def product(
    name: str, *, reads: Sequence[str] = (), major: int | None = None
) -> Callable[[Callable[[AssetContext], Any]], AssetFn]:
    """Build the descriptor's product `name`. `reads`: own assets by name, others' as `domain.product`
    (the major this domain pins in its consumes, else the latest). `major`: build that major of the
    product (an older one, declared by its own descriptor entry and published next to the latest)."""
    return lambda fn: AssetFn(name, fn, "product", tuple(reads), None, major=major)


def internal(
    name: str, *, description: str, reads: Sequence[str] = (), landing: str | None = None
) -> Callable[[Callable[[AssetContext], Any]], AssetFn]:
    """An asset private to the domain (ingestion, intermediate tables). `landing`: a folder under
    `MESH_HOME/landing` this asset ingests; the platform adds a sensor that launches a micro-batch
    run of it (and what the domain builds from it) when new files arrive there."""
    return lambda fn: AssetFn(name, fn, "internal", tuple(reads), description, landing)


@dataclass(frozen=True)
class SuiteFn:
    """A Great Expectations suite a domain adds in code for what its descriptor cannot say."""

    product: str
    name: str
    severity: Literal["error", "warn"]
    fn: Callable[[Any], Sequence[Any]]

    @property
    def check_name(self) -> str:
        return f"suite__{self.name}"


def suite(
    product: str, *, name: str, severity: Literal["error", "warn"] = "error"
) -> Callable[[Callable[[Any], Sequence[Any]]], SuiteFn]:
    """Add a GX suite to a product: the function receives the `great_expectations` module (imported
    only when checks run) and returns expectations; they run as one asset check `suite__<name>`."""
    return lambda fn: SuiteFn(product, name, severity, fn)


@dataclass
class Ingested:
    """What an ingestion wrote: records in = loaded + quarantined, by reason."""

    table: str
    records_in: int
    loaded: int
    quarantined: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class AssetContext:
    """What the platform hands a domain's function for one step. The identity is the platform's:
    `domain` is the domain whose step runs, and `read()` returns only what the platform prepared for
    it (its own assets, and the governed projections of the products it consumes). `con` is the
    step's DuckDB connection, sandboxed to the domain's own warehouse, sources, landing folders and
    staging (`mesh_platform.governance.sandbox`)."""

    domain: str
    name: str
    con: duckdb.DuckDBPyConnection
    home: Path
    reads: tuple[str, ...]
    run_id: str | None = None
    log: Any = None
    landing: str | None = None
    governed: dict[str, str] = field(default_factory=dict)  # product ref -> relation, set by the platform

    @property
    def source_dir(self) -> Path:
        """Where this domain's source systems drop their files (`MESH_HOME/sources/<domain>`)."""
        return self.home / "sources" / self.domain

    @property
    def landing_dir(self) -> Path:
        """The folder this asset ingests (`MESH_HOME/landing/<landing>`, as named in `@internal`)."""
        if self.landing is None:
            raise ValueError(f"{self.domain}.{self.name} reads a landing folder without declaring landing=...")
        return self.home / "landing" / self.landing  # a single name: definitions refuse others (landing-name)

    def landing_files(self) -> LandingListing:
        """The files of `landing_dir` to ingest, each with its size and mtime as listed, and the
        entries that are no file to read (`mesh_platform.sdk.landing`)."""
        return landing_files(self.landing_dir)

    def read(self, ref: str) -> str:
        """A relation name to use in SQL: own assets as-is, other domains' products governed."""
        if ref not in self.reads:
            raise PermissionError(f"{self.domain}.{self.name} reads {ref!r} without declaring it in reads=[...]")
        if "." not in ref:
            return f"main.{quote(ref)}"
        return self.governed[ref]
