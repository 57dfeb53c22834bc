"""Governed projections: what a consumer reads of another domain's product, made by the platform.

A projection is a Parquet file of one published version as one consumer may see it: the declared
columns, pii masked by the producer's policy unless the consumer may read it. The platform writes
it, with the masking key, in its own connection before the consumer's step runs; the consumer's
sandboxed connection may read exactly that file (`allowed_paths`), never the published version or
the key. Projections are kept per consumer (`MESH_HOME/governed/<consumer>/<producer>/<product>/`)
and named by version and policy, so a second read of the same version under the same policy costs
nothing, and a changed grant or masking policy makes a new one on the next read. A version the
consumer may read whole is copied as it is (a file copy, no re-encoding). Each consumer has its own
copy: a consumer that writes over its projection changes only what it reads itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import duckdb

from mesh_platform.governance.read import ReadGrant, governed_sql
from mesh_platform.project.locations import MeshHome
from mesh_platform.storage.duckdb_warehouse import memory_limit
from mesh_platform.storage.product_store import build_into


def folder_for(home: MeshHome, consumer: str, ref: str) -> Path:
    producer, product = ref.split(".", 1)
    return home.governed / consumer / producer / product


def _policy_digest(grant: ReadGrant, key: str) -> str:
    columns = [(c.name, c.type) for c in grant.product.columns if c.name in grant.published.columns]
    policy = {"columns": columns, "masked": sorted(grant.masked.items())}
    if grant.masked:
        policy["key"] = hashlib.sha256(key.encode()).hexdigest()[:16]  # a new key, new tokens
    return hashlib.sha256(json.dumps(policy).encode()).hexdigest()[:16]


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _fresh(path: Path) -> bool:
    """The projection exists and is the file the platform wrote (same size and mtime)."""
    try:
        recorded = json.loads(_stamp(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return [stat.st_size, stat.st_mtime_ns] == [recorded.get("size"), recorded.get("mtime_ns")]


def _is_whole(grant: ReadGrant) -> bool:
    """The consumer sees the published file as it is: nothing masked, nothing left out."""
    declared = {c.name for c in grant.product.columns}
    return not grant.masked and set(grant.published.columns) == declared


def project(home: MeshHome, grant: ReadGrant, key: str) -> Path:
    """The projection of `grant`'s version for its consumer, made if it is not there yet."""
    published = grant.published
    published.check_intact()
    folder = folder_for(home, grant.consumer, grant.ref)
    path = folder / f"{published.version}-{_policy_digest(grant, key)}.parquet"
    if _fresh(path):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if _is_whole(grant):
            shutil.copyfile(published.path, tmp)
        else:
            with duckdb.connect() as con:
                con.execute(f"set memory_limit = '{memory_limit()}'")
                build_into(con, governed_sql(grant, key), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    stat = path.stat()
    _stamp(path).write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    for other in folder.iterdir():
        if other not in (path, _stamp(path)):
            other.unlink(missing_ok=True)  # older versions and policies: never readable again
    return path


def withdraw(home: MeshHome, consumer: str, ref: str) -> None:
    """Remove a consumer's projections of `ref` (its grant was revoked)."""
    shutil.rmtree(folder_for(home, consumer, ref), ignore_errors=True)
