"""The governed read: the only way one domain reads another domain's product.

It resolves the product's current published version (or, with `at`, the version current at a past
time or named by its id; access and masking are still decided as of now) and projects it through
the producer's policy for that consumer: pii columns are masked unless the consumer is the owner or
listed in `access.pii_readers`. The policy is evaluated on every read, so a changed grant takes
effect on the next read without rewriting data. Every decision, granted or refused, goes to the
audit log (`governance.audit`). The reader is always named by the platform (the domain whose step
runs, or the `--as` of a CLI read): nothing here is part of the domain SDK.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from mesh_platform.descriptor.model import Descriptor, Product
from mesh_platform.governance.audit import audit_read
from mesh_platform.governance.masking import mask_expression, pii_columns
from mesh_platform.pg_warehouse import governed as pg_governed
from mesh_platform.pg_warehouse.roles import domain_role
from mesh_platform.project.mesh import Mesh
from mesh_platform.sql.syntax import Dialect, literal, quote
from mesh_platform.storage.product_store import ProductStore, Published


class AccessDenied(Exception):
    """A read the access agreements refuse; `rule` names the agreement that is missing."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.rule = rule


class NotPublished(Exception):
    pass


@dataclass(frozen=True)
class ReadGrant:
    consumer: str
    producer: Descriptor
    product: Product
    published: Published
    masked: dict[str, str] = field(default_factory=dict)  # column -> policy

    @property
    def ref(self) -> str:
        """The product read (an older major: `<domain>.<product>_v<major>`, as stored)."""
        return f"{self.producer.domain}.{self.product.name}"

    @property
    def read_as(self) -> str:
        """The name the consumer reads it by, whichever major it pins: `<domain>.<product>`."""
        return f"{self.producer.domain}.{self.product.family}"


def _wanted(mesh: Mesh, ref: str, consumer: str) -> tuple[Descriptor, Product]:
    """The product (and major) a read of `ref` asks for: a product's name is the major the consumer
    pins in its consumes (the latest when it pins none); `<ref>@<major>` asks for that major."""
    producer, product = mesh.product(ref)
    if "@" in ref or product.is_older_major or consumer == producer.domain:
        return producer, product
    return mesh.product(mesh.resolve(consumer, ref))


def authorize(mesh: Mesh, ref: str, consumer: str, at: str | datetime | None = None) -> ReadGrant:
    """Check the access agreement both ways (for the major read) and decide the masking for this
    consumer; the version read is the current one, or the one `at` names (a version id, or a time:
    the version current then; `store.parse_at`), looked up only once the read is granted."""
    producer, product = _wanted(mesh, ref, consumer)
    if consumer != producer.domain:
        consumer_desc = mesh.descriptors.get(consumer)
        if consumer_desc is None:
            raise AccessDenied(f"{consumer!r} is not a valid domain of this mesh; it cannot read {ref}", "known-domain")
        family = f"{producer.domain}.{product.family}"
        if family not in consumer_desc.consumed_refs:
            raise AccessDenied(
                f"{consumer} does not consume {ref}: add it to consumes in {mesh.files[consumer]} "
                f"(and ask {producer.owner} to grant it in {mesh.files[producer.domain]})",
                "read-through-consumes",
            )
        if mesh.resolve(consumer, family) != f"{producer.domain}.{product.name}":
            pinned = consumer_desc.pinned_major(family)
            raise AccessDenied(
                f"{consumer} consumes {family}{f'@{pinned}' if pinned is not None else ' (its latest major)'}, "
                f"not {producer.domain}.{product.pinned_ref}: change the pin in consumes in {mesh.files[consumer]}",
                "read-pinned-major",
            )
        if not product.access.grants(consumer):
            raise AccessDenied(
                f"{ref} is not granted to {consumer}: its access.consumers in "
                f"{mesh.files[producer.domain]} does not list {consumer!r}",
                "access-granted",
            )
    store = ProductStore(mesh.project.home)
    # `VersionNotFound` when `at` names no version kept
    published = (
        store.current(producer.domain, product.name) if at is None else store.resolve(producer.domain, product.name, at)
    )
    if published is None:
        raise NotPublished(f"{ref} has not been published yet: run `mesh run --domain {producer.domain}` first")
    sees_pii = consumer == producer.domain or consumer in product.access.pii_readers
    masked = {} if sees_pii else {c.name: c.mask_policy for c in product.columns if c.mask_policy}
    return ReadGrant(consumer, producer, product, published, masked)  # type: ignore[arg-type]


def governed_sql(grant: ReadGrant, key: str, source: str | None = None, dialect: Dialect = "duckdb") -> str:
    """A SELECT over the published version with the consumer's masking applied. `source`: the
    relation holding that version in a server warehouse (default: its Parquet file, for DuckDB)."""
    published_columns = grant.published.columns
    exprs = []
    for column in grant.product.columns:
        if column.name not in published_columns:
            continue
        if column.name in grant.masked:
            expr = mask_expression(grant.masked[column.name], column.name, column.type, key, dialect)
            exprs.append(f"{expr} as {quote(column.name)}")
        else:
            exprs.append(quote(column.name))
    return f"select {', '.join(exprs)} from {source or f'read_parquet({literal(grant.published.path)})'}"


def create_projection_view(con: duckdb.DuckDBPyConnection, grant: ReadGrant, projection: Path) -> str:
    """Expose the consumer's projection of the product in its warehouse as `<producer>.<product>`
    (whichever major it pins: a consumer reads one major of each product)."""
    schema, view = quote(grant.producer.domain), quote(grant.product.family)
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create or replace view {schema}.{view} as select * from read_parquet({literal(str(projection))})")
    return f"{schema}.{view}"


def create_governed_view_pg(pg: Any, grant: ReadGrant, key: str) -> str:
    """The same view in the consumer's PostgreSQL database (on a platform session), owned by the
    platform and readable by the consumer's role only, over the published version loaded there with
    its tokens (`mesh_platform.pg_warehouse.governed`: the key never reaches the server)."""
    copy = pg_governed.load_copy(pg, grant, key)
    return pg_governed.create_view(pg, grant, copy, domain_role(grant.consumer)).relation


def sees_raw_pii(grant: ReadGrant) -> bool:
    return not grant.masked and bool(pii_columns(grant.product.columns))


def record_read(mesh: Mesh, grant: ReadGrant, run_id: str | None, via: str, at: str | None = None) -> dict[str, object]:
    """Audit a granted read (`raw_read` when the reader sees pii unmasked); `at`: the version id or
    time asked for, when it was not the current version."""
    extra = {"as_of": at} if at is not None else {}
    return audit_read(
        mesh.project.home,
        "raw_read" if sees_raw_pii(grant) else "read",
        consumer=grant.consumer,
        product=grant.ref,
        version=grant.published.version,
        masked_columns=grant.masked,
        run_id=run_id,
        via=via,
        **extra,
    )


def governed_read(
    mesh: Mesh, ref: str, consumer: str, run_id: str | None, via: str, at: str | datetime | None = None
) -> ReadGrant:
    """Authorize `consumer` to read `ref`; a refusal is audited (who, what, which rule) and raised,
    and the consumer's projections of `ref` are withdrawn."""
    try:
        return authorize(mesh, ref, consumer, at)
    except AccessDenied as exc:
        from mesh_platform.governance.projection import withdraw

        withdraw(mesh.project.home, consumer, ref)
        audit_read(
            mesh.project.home,
            "refused",
            consumer=consumer,
            product=ref,
            rule=exc.rule,
            reason=str(exc),
            run_id=run_id,
            via=via,
        )
        raise


__all__ = [
    "AccessDenied",
    "NotPublished",
    "ReadGrant",
    "asdict",
    "authorize",
    "create_governed_view_pg",
    "create_projection_view",
    "governed_read",
    "governed_sql",
    "record_read",
]
