"""A product's contract as an ODCS 3.x document (`mesh export-contract`).

The product is one schema object named after it (no `physicalName`: a server's table or file is
the product's, so ODCS tools read it under that name), whose properties are the columns:
logicalType, physicalType as the warehouse names it, description, classification, the masking
policy as the custom property `mask`, and `required` / `unique` where an `error` expectation
guarantees it. Its quality rules are the descriptor's expectations and the domain's code suites
(`@suite`), each in its ODCS-native form where it has one (`odcs_quality`), with the check's name
as the rule's `id`. The owner is the team; `value` is the purpose, the product's description its
usage, the rules ODCS tools may not run (Great Expectations custom rules) its limitations;
`freshness` is the `latency` SLA; the access agreement is one role per consumer and pii reader.
`version` is the product's `MAJOR.MINOR` as `MAJOR.MINOR.0`, `1.0.0` while it declares none.

`servers` says where the product lives:
- DuckDB warehouse (default): the current published version, a Parquet file (`type: local`,
  `format: parquet`, its path), as `current.json` names it; none before the first publication.
- `MESH_WAREHOUSE=postgres`: the owner's table on the server, database `<domain>`, schema `main`,
  table `<product>`, which the domain's role (`mesh_domain_<domain>`) may read; it holds the
  domain's last build, which is the published version unless that build failed a blocking check.
  The physical types are then PostgreSQL's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from open_data_contract_standard.model import (
    CustomProperty,
    Description,
    OpenDataContractStandard,
    Role,
    SchemaObject,
    SchemaProperty,
    Server,
    ServiceLevelAgreementProperty,
    Team,
    TeamMember,
)

from mesh_platform.contracts.odcs_quality import GxRule, OdcsRule, to_quality
from mesh_platform.descriptor.model import DURATION_PATTERN, Access, Column, Descriptor, Product
from mesh_platform.sql.syntax import SQL_TYPES

if TYPE_CHECKING:
    from mesh_platform.project.mesh import Mesh
    from mesh_platform.sdk import SuiteFn

API_VERSION = "v3.1.0"
LOGICAL = {
    "string": "string",
    "integer": "integer",
    "bigint": "integer",
    "double": "number",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
# the physical type of each column type, as each warehouse names it
PHYSICAL = {
    "duckdb": SQL_TYPES,
    "postgres": {
        "string": "text",
        "integer": "integer",
        "bigint": "bigint",
        "double": "double precision",
        "boolean": "boolean",
        "date": "date",
        "timestamp": "timestamp",
    },
}
UNITS = {"m": "min", "h": "h", "d": "d"}
CONSUMER, PII_READER = "consumer", "pii_reader"
MASK_PROPERTY = "mask"
MAIN_SCHEMA = "main"  # the schema a domain builds in, on PostgreSQL


def contract_version(product: Product) -> str:
    """The contract's semantic version: the product's `MAJOR.MINOR` as `MAJOR.MINOR.0`."""
    declared = getattr(product, "version", None)  # `version` is optional in the descriptor
    return f"{declared}.0" if declared else "1.0.0"


def contract_rules(product: Product, suites: Sequence[SuiteFn] = ()) -> list[GxRule]:
    """Every expectation the product is checked with: the descriptor's, then each code suite's."""
    rules = [GxRule(name, e.type, dict(e.kwargs), e.severity) for name, e in product.named_expectations()]
    if suites:
        from mesh_platform.checks.evaluate import gx_module

        for suite in suites:
            for i, expectation in enumerate(suite.fn(gx_module()), 1):
                config = expectation.configuration
                rules.append(
                    GxRule(f"{suite.check_name}__{i}", config.type, dict(config.kwargs), suite.severity, suite.name)
                )
    return rules


def _guaranteed(rules: Sequence[GxRule], column: str, type_: str) -> bool | None:
    """True when a blocking rule guarantees it (informational: the quality rules are what is checked)."""
    hit = any(
        r.type == type_ and r.severity == "error" and r.kwargs.get("column") == column and not r.kwargs.get("mostly")
        for r in rules
    )
    return True if hit else None


def _property(column: Column, rules: Sequence[GxRule], quality: list[OdcsRule], warehouse: str) -> SchemaProperty:
    return SchemaProperty(
        name=column.name,
        logicalType=LOGICAL[column.type],
        physicalType=PHYSICAL[warehouse][column.type],
        description=column.description,
        classification=column.classification,
        required=_guaranteed(rules, column.name, "expect_column_values_to_not_be_null"),
        unique=_guaranteed(rules, column.name, "expect_column_values_to_be_unique"),
        customProperties=[CustomProperty(property=MASK_PROPERTY, value=column.mask)] if column.mask else None,
        quality=[r.quality for r in quality if r.column == column.name] or None,
    )


def _team(owner: str) -> Team:
    if owner.startswith("team:"):
        return Team(name=owner.removeprefix("team:"), description=f"Dagster owner {owner}")
    return Team(name=owner, members=[TeamMember(username=owner, role="owner")], description=f"Dagster owner {owner}")


def _sla(freshness: str | None) -> list[ServiceLevelAgreementProperty] | None:
    match = DURATION_PATTERN.match(freshness) if freshness else None
    if match is None:
        return None
    return [
        ServiceLevelAgreementProperty(
            property="latency",
            value=int(match.group(1)),
            unit=UNITS[match.group(2)],
            driver="operational",
            description=f"freshness: a new version is published at most {freshness} after the previous one",
        )
    ]


def _roles(access: Access) -> list[Role] | None:
    roles = [
        Role(role=f"{CONSUMER}:{c}", access="read", description="may consume the product") for c in access.consumers
    ]
    roles += [
        Role(role=f"{PII_READER}:{d}", access="read", description="sees pii columns unmasked")
        for d in access.pii_readers
    ]
    return roles or None


def _limitations(quality: Sequence[OdcsRule]) -> str | None:
    custom = [r.quality for r in quality if not r.native]
    if not custom:
        return None
    listed = "; ".join(f"{q.id} ({q.implementation['type']}, {q.severity})" for q in custom)  # type: ignore[index]
    return (
        f"{len(custom)} quality rule(s) have no ODCS-native form and are Great Expectations custom rules "
        f"(engine: great-expectations), which the mesh runs and ODCS tools such as datacontract-cli do not: {listed}."
    )


def to_odcs(
    descriptor: Descriptor,
    product: Product,
    suites: Sequence[SuiteFn] = (),
    servers: list[Server] | None = None,
    warehouse: str = "duckdb",
) -> OpenDataContractStandard:
    rules = contract_rules(product, suites)
    quality = [to_quality(r) for r in rules]
    columns = {c.name for c in product.columns}
    on_schema = [r.quality for r in quality if r.column not in columns]
    return OpenDataContractStandard(
        apiVersion=API_VERSION,
        kind="DataContract",
        id=f"{descriptor.domain}.{product.pinned_ref}",  # an older major: `<domain>.<product>@<major>`
        name=product.name,
        version=contract_version(product),
        status="active",
        domain=descriptor.domain,
        dataProduct=product.name,
        tags=[descriptor.business_process],
        description=Description(
            purpose=product.value.strip(), usage=product.description, limitations=_limitations(quality)
        ),
        servers=servers or None,
        schema=[
            SchemaObject(
                name=product.name,
                logicalType="object",
                physicalType="table",
                description=product.description,
                properties=[_property(c, rules, quality, warehouse) for c in product.columns],
                quality=on_schema or None,
            )
        ],
        team=_team(descriptor.owner_of(product)),
        roles=_roles(product.access),
        slaProperties=_sla(product.freshness),
    )


def to_yaml(
    descriptor: Descriptor,
    product: Product,
    suites: Sequence[SuiteFn] = (),
    servers: list[Server] | None = None,
    warehouse: str = "duckdb",
) -> str:
    return to_odcs(descriptor, product, suites, servers, warehouse).to_yaml()


# --- where the product lives, and its code suites ---------------------------------------------------------


def product_servers(mesh: Mesh, domain: str, product: str, warehouse: str) -> list[Server]:
    """The servers of the product's contract on `warehouse` (see the module's docstring)."""
    if warehouse == "postgres":
        from mesh_platform.pg_warehouse import PgWarehouse
        from mesh_platform.pg_warehouse.roles import domain_role

        pg = PgWarehouse.from_env()
        role = domain_role(domain)
        return [
            Server(
                server="postgres",
                type="postgres",
                host=pg.host,
                port=pg.port,
                database=domain,
                schema=MAIN_SCHEMA,
                environment="prod",
                description=f"{domain}.{product} in its owner's database: the table {MAIN_SCHEMA}.{product} of "
                f"database {domain}, written by the domain's last build (the published version unless that build "
                f"failed a blocking check); readable by the domain's role {role}",
                roles=[Role(role=role, access="read", description=f"the {domain} domain's login role")],
            )
        ]
    from mesh_platform.storage.product_store import ProductStore

    published = ProductStore(mesh.project.home).current(domain, product)
    if published is None:
        return []
    return [
        Server(
            server="local",
            type="local",
            format="parquet",
            path=published.path,
            environment="prod",
            description=f"the current published version of {domain}.{product}: version {published.version}, "
            f"{published.rows} rows, published {published.published_at}",
        )
    ]


class ContractSourceError(Exception):
    """What a contract is made from (the domain's code) cannot be read."""


def product_suites(mesh: Mesh, domain: str, product: str) -> list[SuiteFn]:
    """The `@suite`s the domain's code adds to the product (its code is scanned first, as when
    definitions load: code with undeclared direct access is not imported)."""
    from mesh_platform.defs.domain_definitions import _import_domain_code, _suites, code_access_problems

    if code_access_problems(mesh, mesh.descriptors[domain]):
        raise ContractSourceError(f"{domain}'s code has problems, so its suites cannot be read (see `mesh validate`)")
    try:
        module = _import_domain_code(mesh, domain)
    except Exception as exc:  # the domain's own code failed to import: its problem, reported in one line
        raise ContractSourceError(f"{domain}'s code does not import: {type(exc).__name__}: {exc}") from exc
    return _suites(module).get(product, [])


def product_contract(mesh: Mesh, ref: str, warehouse: str) -> str:
    """The ODCS YAML of product `ref` as the mesh in `mesh` holds it."""
    descriptor, product = mesh.product(ref)
    suites = product_suites(mesh, descriptor.domain, product.name)
    servers = product_servers(mesh, descriptor.domain, product.name, warehouse)
    return to_yaml(descriptor, product, suites, servers, warehouse)
