"""Keep the consumers' masking views equal to the descriptors' grants and policies.

`sync_database` runs at the start of every consumer's governed read (its own database) and
`sync_mesh` at the start of every `mesh run` (every domain's database): a view whose consumer is no
longer granted the product (or no longer consumes it, or the product is gone) is dropped with its
copy, and a view whose masking differs from the producer's current policy is made again. So a
revoked grant or a tightened policy holds from the next `mesh run`, or the consumer's next run,
whichever comes first; until then the consumer's role keeps what it was last granted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from mesh_platform.governance.read import AccessDenied, NotPublished, ReadGrant, authorize
from mesh_platform.pg_warehouse import URL_ENV, PgWarehouse, WarehouseConfigError
from mesh_platform.pg_warehouse.governed import (
    GovernedView,
    create_view,
    drop_unused,
    drop_view,
    governed_views,
    load_copy,
)
from mesh_platform.pg_warehouse.roles import (
    PlatformSession,
    check_owner,
    domain_role,
    ensure_platform,
    platform_session,
    provision,
)
from mesh_platform.project.mesh import Mesh

SYNC_CONNECTIONS = 8  # databases synced at once


def current_grant(mesh: Mesh, view: GovernedView, consumer: str, keep: frozenset[str] | None) -> ReadGrant | None:
    """What the descriptors grant `consumer` of the view's product now (None: nothing, or the
    product is not among `keep`, when given)."""
    if not view.product or (keep is not None and view.product not in keep):
        return None
    try:
        return authorize(mesh, view.product, consumer)
    except (AccessDenied, NotPublished, KeyError):
        return None


def sync_database(
    pg: PlatformSession, mesh: Mesh, consumer: str, key: str, keep: frozenset[str] | None = None
) -> list[str]:
    """On a platform session to `consumer`'s database: drop the views it may no longer read (and
    those not in `keep`, when given), re-mask those whose policy changed; returns what was dropped.
    The copies left unread are the caller's to drop (`drop_unused`), once it made its views."""
    dropped = []
    for view in governed_views(pg):
        grant = current_grant(mesh, view, consumer, keep)
        if grant is None:
            drop_view(pg, view)
            dropped.append(view.product or view.relation)
        elif grant.masked != view.masked:
            create_view(pg, grant, load_copy(pg, grant, key), domain_role(consumer))
    return dropped


def sync_mesh(mesh: Mesh, pg: PgWarehouse) -> dict[str, list[str]]:
    """Every domain database the platform made, at once (each is a connection to open): returns the
    views dropped, per domain. Also checks that `pg` is an admin."""
    owners = ensure_platform(pg)
    made = [domain for domain in mesh.project.domain_names() if domain in owners]
    for domain in made:
        check_owner(pg, domain, owners[domain])
    key = mesh.project.home.masking_key()

    def sync(domain: str) -> list[str]:
        try:
            with platform_session(pg, domain) as con:
                dropped = sync_database(con, mesh, domain, key)
                drop_unused(con)
                return dropped
        except WarehouseConfigError:
            raise
        except Exception as exc:
            raise WarehouseConfigError(
                f"{URL_ENV}: syncing the governed views of database {domain!r} at {pg.where} failed: {pg.reason(exc)}"
            ) from None

    if not made:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(made), SYNC_CONNECTIONS)) as pool:
        return dict(zip(made, pool.map(sync, made), strict=True))


@contextmanager
def consumer_session(mesh: Mesh, consumer: str, refs: Sequence[str], key: str) -> Iterator[PlatformSession]:
    """A platform session to the consumer's database for its run's governed reads (`refs`): first
    the views it may no longer read, or no longer reads, are dropped with their copies (even if a
    read is then refused), and on the way out the versions its views no longer read."""
    pg = PgWarehouse.from_env()
    provision(pg, mesh.project.home, consumer)
    with platform_session(pg, consumer) as con:
        sync_database(con, mesh, consumer, key, keep=frozenset(refs))
        drop_unused(con)
        yield con
        drop_unused(con)
