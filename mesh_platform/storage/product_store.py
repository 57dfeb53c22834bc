"""The product store: published, immutable versions of each data product.

A product is built straight into a Parquet file in the step's staging folder (`staging`), which the
domain's warehouse sees as the view `main.<product>`; it is audited there, and only then published:
moved to `products/<domain>/<product>/<version>.parquet` and made current by atomically replacing
`current.json`. So its rows are written once. (A product the domain made as a table of its own: a
dbt model with constraints, a view or an incremental model, a Python function that made its table,
is copied instead; on PostgreSQL a built table is exported into the staged file.) Consumers only
ever read the file `current.json` names, so a failed or killed run leaves what they read as it
was, and reads never take DuckDB locks on another domain's warehouse.

Every version published is listed in the folder's `versions.json` (its id, time, rows, run, check
results and file), oldest first, so a version is read back by id or by time (`resolve`: what was
current then). Publishing prunes old versions: those older than the product's `retention`, or
without one all but the last `KEEP_VERSIONS`; never the version just made current. The store is
keyed by (domain, store name): a folder per name, whatever the name stands for.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from mesh_platform.project.locations import MeshHome
from mesh_platform.sql.syntax import literal, quote
from mesh_platform.text import one_line

KEEP_VERSIONS = 5  # versions kept of a product without a `retention` (the current one among them)
VERSIONS_FILE = "versions.json"
# a version id: the UTC time it was published to the microsecond, then the run id's first characters
VERSION_ID = re.compile(r"^(\d{8}T\d{12})-[^\s/]{1,8}$")


@dataclass(frozen=True)
class Published:
    domain: str
    product: str
    version: str
    path: str
    rows: int
    published_at: str
    run_id: str | None
    columns: dict[str, str]
    size: int | None = None  # the file as published: a change in size or mtime means it was tampered with
    mtime_ns: int | None = None
    contract: dict[str, Any] | None = None  # the product's contract as published (`contracts.snapshot`)
    checks: list[dict[str, Any]] | None = None  # the results of its audit (`CheckOutcome.as_dict`)
    # its pii columns and the policy each was masked by: kept in the index, where `contract` is not, so
    # that an imported contract cannot unmask a column an earlier version masked (`contracts.odcs_import`)
    pii: dict[str, str] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Published:
        """A version as stored; keys a later version of the platform added are left out."""
        return cls(**{k: v for k, v in data.items() if k in PUBLISHED_FIELDS})

    @property
    def ref(self) -> str:
        return f"{self.domain}.{self.product}"

    def check_intact(self) -> None:
        """Raise `TamperedVersion` when the file is not the one published (rewritten since)."""
        if self.size is None or self.mtime_ns is None:
            return  # published before versions recorded their file's size
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise TamperedVersion(f"version {self.version} of {self.ref} is missing: {self.path}") from None
        if (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns):
            raise TamperedVersion(
                f"version {self.version} of {self.ref} was modified after it was published ({self.path}); "
                f"it is not served: republish it with `mesh run --domain {self.domain}`"
            )


PUBLISHED_FIELDS = frozenset(f.name for f in fields(Published))


class DamagedStore(Exception):
    """A product's `current.json` or version index that is not what the store writes (edited by hand:
    the store writes each atomically)."""


@contextmanager
def _damaged_if_unreadable(path: Path, ref: str) -> Iterator[None]:
    try:
        yield
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DamagedStore(
            f"{path} is damaged ({type(exc).__name__}: {one_line(str(exc))[:160]}): the store's record of "
            f"{ref} cannot be read; restore the file, or remove it and republish the product"
        ) from None


class TamperedVersion(Exception):
    """A published version's file is not the one that was audited and published."""


class VersionNotFound(Exception):
    """No version of the product answers a version id or a time (unknown, pruned, or before the first)."""


def parse_at(value: str) -> str | datetime:
    """`--at`: a version id (returned as it is) or an ISO 8601 time (UTC when it names no zone);
    `ValueError` naming the value for anything else."""
    text = value.strip()
    if VERSION_ID.match(text):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a version id (like 20260101T120000000000-1a2b3c4d) nor an ISO time "
            "(like 2026-01-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pii_policies(contract: dict[str, Any] | None) -> dict[str, str] | None:
    """{pii column: its mask policy} of a contract snapshot (`contracts.snapshot`), None without one."""
    if contract is None:
        return None
    return {c["name"]: c["mask"] for c in contract.get("columns", []) if c.get("classification") == "pii"}


def published_at(version: Published) -> datetime:
    return datetime.fromisoformat(version.published_at)


@dataclass(frozen=True)
class VersionIndex:
    """The versions of one product the store keeps, oldest first; `first_published_at`: when its first
    version was published (kept or pruned since), `pruned`: how many were pruned."""

    versions: list[Published]
    first_published_at: str | None = None
    pruned: int = 0

    def find(self, version_id: str) -> Published | None:
        return next((v for v in self.versions if v.version == version_id), None)

    def as_of(self, moment: datetime) -> Published | None:
        """The version that was current at `moment`: the newest published at or before it."""
        before = [v for v in self.versions if published_at(v) <= moment]
        return before[-1] if before else None


# zstd at its fastest level: faster to write than its default (level 3) for files of about the same
# size; snappy is as fast but larger (figures in docs/performance.md)
PARQUET = "format parquet, compression zstd, compression_level 1"


@contextmanager
def staging(home: MeshHome, domain: str, run_id: str) -> Iterator[Path]:
    """The folder where a step builds its domain's products before the audit. What the step did not
    publish or reject (it failed first) goes with the folder when the step ends."""
    folder = home.path / "staging" / domain / run_id
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def staged_file(folder: Path, name: str) -> Path:
    """Where a step builds product `name` in its staging `folder` (the dbt materialization
    `mesh_product` writes the same path)."""
    return folder / f"{name}.parquet"


def build_into(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    """Write the rows of `query` (a SELECT, which may end in a comment or a semicolon) to the Parquet
    file `path`, in the store's format."""
    con.execute(f"copy (\n{query.strip().removesuffix(';')}\n) to {literal(str(path))} ({PARQUET})")


def point_view(con: duckdb.DuckDBPyConnection, name: str, path: Path | str) -> str:
    """Make `main.<name>` a view over the Parquet file `path` (replacing a table of that name);
    returns the relation."""
    relation = f"main.{quote(name)}"
    kind = con.execute(
        "select table_type from information_schema.tables "
        "where table_catalog = current_database() and table_schema = 'main' and table_name = ?",
        [name],
    ).fetchall()
    if kind and kind[0][0] != "VIEW":
        con.execute(f"drop table {relation}")
    con.execute(f"create or replace view {relation} as select * from read_parquet({literal(str(path))})")
    return relation


@dataclass(frozen=True)
class Build:
    """What a step built for audit: the relation the checks read and the Parquet file it was built
    into (None: a table of the domain's own, which is copied when kept)."""

    relation: str
    file: Path | None = None
    staging: Path | None = None  # where a table is written out first (the step's sandbox may write there)

    def keep(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """Put the build at `path`: the file is moved (a rename within MESH_HOME); a table is written
        into the staging folder by the step's own connection, then moved."""
        if self.file is not None:
            shutil.move(self.file, path)
            return
        staged = (self.staging or path.parent) / f".{path.name}.{uuid.uuid4().hex[:8]}.parquet"
        build_into(con, f"select * from {self.relation}", staged)
        shutil.move(staged, path)


def parquet_summary(path: Path | str) -> tuple[int, dict[str, str]]:
    """Rows and column types of a Parquet file, read by the platform (not a domain's connection)."""
    with duckdb.connect() as con:
        source = f"read_parquet({literal(str(path))})"
        rows = con.execute(f"select count(*) from {source}").fetchone()[0]  # type: ignore[index]
        described = con.execute(f"describe select * from {source}").fetchall()
    return int(rows), {row[0]: str(row[1]).lower() for row in described}


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _now() -> datetime:
    return datetime.now(UTC)


class ProductStore:
    def __init__(self, home: MeshHome):
        self.home = home

    def current(self, domain: str, product: str) -> Published | None:
        pointer = self.home.product_dir(domain, product) / "current.json"
        try:
            text = pointer.read_text()
        except FileNotFoundError:
            return None
        with _damaged_if_unreadable(pointer, f"{domain}.{product}"):
            return Published.from_dict(json.loads(text))

    def versions(self, domain: str, product: str) -> VersionIndex:
        """The versions kept of `domain.product` (a store from before the index: listed from its files)."""
        return self._index(domain, product)

    def _index(self, domain: str, product: str, publishing: str | None = None) -> VersionIndex:
        """`versions`; `publishing`: a version being published, left out (its file is there already)."""
        folder = self.home.product_dir(domain, product)
        try:
            text = (folder / VERSIONS_FILE).read_text()
        except FileNotFoundError:
            return _index_from_files(folder, self.current(domain, product), publishing)
        with _damaged_if_unreadable(folder / VERSIONS_FILE, f"{domain}.{product}"):
            data = json.loads(text)
            return VersionIndex(
                [Published.from_dict(v) for v in data["versions"]],
                data.get("first_published_at"),
                int(data.get("pruned", 0)),
            )

    def resolve(self, domain: str, product: str, at: str | datetime) -> Published:
        """The version with id `at`, or the one current at time `at` (`parse_at`); `VersionNotFound`
        says why there is none."""
        ref, index = f"{domain}.{product}", self.versions(domain, product)
        listing = f"`mesh versions {ref}` lists them"
        if isinstance(at, str):
            found = index.find(at)
            if found is None:
                pruned = f" or pruned ({index.pruned} pruned so far)" if index.pruned else ""
                raise VersionNotFound(f"{ref} has no version {at!r}: unknown{pruned}; {listing}")
            return found
        found = index.as_of(at)
        if found is not None:
            return found
        if not index.versions:
            raise VersionNotFound(f"{ref} has not been published yet")
        oldest = index.versions[0].published_at
        first = index.first_published_at or oldest
        if index.pruned and at >= datetime.fromisoformat(first):
            raise VersionNotFound(
                f"the version of {ref} current at {at.isoformat()} has been pruned; the oldest kept was published "
                f"at {oldest}; {listing}"
            )
        raise VersionNotFound(f"{at.isoformat()} is before the first version of {ref} (published at {first})")

    def publish(
        self,
        con: duckdb.DuckDBPyConnection,
        domain: str,
        product: str,
        build: Build,
        run_id: str | None,
        contract: dict[str, Any] | None = None,
        checks: list[dict[str, Any]] | None = None,
        retention_seconds: int | None = None,
    ) -> Published:
        """Make the audited product a new version and current, atomically; `contract` is recorded
        with it (what the definitions-load gate compares a changed contract with), `checks` (the
        audit's results) in the version index. Then prune: versions older than `retention_seconds`,
        or without it all but the last `KEEP_VERSIONS`; never the new current version."""
        folder = self.home.product_dir(domain, product)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{uuid.uuid4().hex}.parquet.tmp"
        build.keep(con, tmp)
        rows, columns = parquet_summary(tmp)
        with _locked(folder):  # one publication of the product at a time: versions are current in their order
            now = _now()
            version = f"{now:%Y%m%dT%H%M%S%f}-{(run_id or uuid.uuid4().hex)[:8]}"
            path = folder / f"{version}.parquet"
            os.replace(tmp, path)
            stat = path.stat()
            published = Published(
                domain,
                product,
                version,
                str(path),
                rows,
                now.isoformat(),
                run_id,
                columns,
                stat.st_size,
                stat.st_mtime_ns,
                contract,
                checks,
                pii_policies(contract),
            )
            index = self._index(domain, product, publishing=version)
            earlier = index.versions
            kept, pruned = _retain([*earlier, replace(published, contract=None)], now, retention_seconds)
            first = (index.first_published_at or earlier[0].published_at) if earlier else published.published_at
            _write_json_atomic(
                folder / VERSIONS_FILE,
                {
                    "first_published_at": first,
                    "pruned": index.pruned + len(pruned),
                    "versions": [asdict(v) for v in kept],
                },
            )
            _write_json_atomic(folder / "current.json", asdict(published))
        for old in pruned:
            Path(old.path).unlink(missing_ok=True)
        return published

    def reject(
        self, con: duckdb.DuckDBPyConnection, domain: str, product: str, build: Build, run_id: str | None
    ) -> str | None:
        """Keep a version that failed its blocking checks for inspection; consumers never see it."""
        folder = self.home.product_dir(domain, product) / "rejected"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_now():%Y%m%dT%H%M%S%f}-{(run_id or uuid.uuid4().hex)[:8]}.parquet"
        try:
            build.keep(con, path)
        except duckdb.Error:
            return None  # nothing was built to keep (an upstream failed)
        for old in sorted(folder.glob("*.parquet"))[:-KEEP_VERSIONS]:
            old.unlink(missing_ok=True)
        return str(path)

    def record_status(self, domain: str, product: str, status: dict[str, Any]) -> None:
        """The outcome of the latest attempt (published or not), for `mesh products`."""
        folder = self.home.product_dir(domain, product)
        folder.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(folder / "status.json", {"recorded_at": _now().isoformat(), **status})

    def status(self, domain: str, product: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.home.product_dir(domain, product) / "status.json").read_text())
        except FileNotFoundError:
            return None


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _retain(
    versions: list[Published], now: datetime, retention_seconds: int | None
) -> tuple[list[Published], list[Published]]:
    """(kept, pruned) of `versions` (oldest first, the last one current): those published within
    `retention_seconds` of `now`, or without it the last `KEEP_VERSIONS`; the current one always."""
    if retention_seconds is None:
        cut = max(len(versions) - KEEP_VERSIONS, 0)
        return versions[cut:], versions[:cut]
    since = now - timedelta(seconds=retention_seconds)
    kept = [v for v in versions[:-1] if published_at(v) >= since] + versions[-1:]
    return kept, [v for v in versions[:-1] if published_at(v) < since]


def _index_from_files(folder: Path, current: Published | None, publishing: str | None = None) -> VersionIndex:
    """The versions of a store written before `versions.json`: each file named by a version id, its
    time read from the id (its checks and run were not recorded), the current one from `current.json`."""
    versions = []
    for path in sorted(folder.glob("*.parquet")):
        match = VERSION_ID.match(path.stem)
        if match is None or path.stem == publishing:
            continue
        if current is not None and path.stem == current.version:
            versions.append(replace(current, contract=None))
            continue
        rows, columns = parquet_summary(path)
        when = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
        versions.append(
            Published(folder.parent.name, folder.name, path.stem, str(path), rows, when.isoformat(), None, columns)
        )
    return VersionIndex(versions, versions[0].published_at if versions else None)
