"""A product's contract as an Open Data Contract Standard (ODCS) 3.x document, and back.

`to_odcs` maps the descriptor onto ODCS: the product is one schema object whose properties are
the columns (logicalType, physicalType as DuckDB names it, classification, the masking policy as
a custom property); each expectation is a quality rule run by Great Expectations (`engine:
great-expectations`, the expectation as `implementation`) with its severity (`warn` -> `warning`);
the owner is the team; `freshness` is the `latency` SLA; `value` is the purpose; the access
agreement is one role per consumer and per pii reader. `from_odcs` reads such a document back into
the platform's models, so a contract can be checked against the descriptor it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from open_data_contract_standard.model import (
    CustomProperty,
    DataQuality,
    Description,
    OpenDataContractStandard,
    Role,
    SchemaObject,
    SchemaProperty,
    ServiceLevelAgreementProperty,
    Team,
    TeamMember,
)

from mesh_platform.descriptor.model import (
    DURATION_PATTERN,
    SQL_TYPE_NAMES,
    Access,
    Column,
    Descriptor,
    Expectation,
    Product,
)

API_VERSION = "v3.1.0"
CONTRACT_VERSION = "1.0.0"
GX_ENGINE = "great-expectations"
LOGICAL = {
    "string": "string",
    "integer": "integer",
    "bigint": "integer",
    "double": "number",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
PHYSICAL = SQL_TYPE_NAMES
COLUMN_TYPE = {v: k for k, v in PHYSICAL.items()}
SEVERITY = {"error": "error", "warn": "warning"}
UNITS = {"m": "min", "h": "h", "d": "d"}
CONSUMER, PII_READER = "consumer", "pii_reader"


class ContractError(ValueError):
    """An ODCS document the platform cannot read as a product contract."""


@dataclass(frozen=True)
class ContractedProduct:
    """What an ODCS document says about a product: where it lives, who owns it, and the product."""

    domain: str
    owner: str
    product: Product  # `owner` left unset: it is `ContractedProduct.owner`

    @property
    def ref(self) -> str:
        return f"{self.domain}.{self.product.name}"


def _flag(product: Product, column: str, expectation_type: str) -> bool | None:
    """True when an error-severity expectation guarantees it (informational; quality rules are authoritative)."""
    hit = any(
        e.type == expectation_type and e.severity == "error" and e.kwargs.get("column") == column
        for e in product.expectations
    )
    return True if hit else None


def _property(product: Product, column: Column) -> SchemaProperty:
    return SchemaProperty(
        name=column.name,
        logicalType=LOGICAL[column.type],
        physicalType=PHYSICAL[column.type],
        description=column.description,
        classification=column.classification,
        required=_flag(product, column.name, "expect_column_values_to_not_be_null"),
        unique=_flag(product, column.name, "expect_column_values_to_be_unique"),
        customProperties=[CustomProperty(property="mask", value=column.mask)] if column.mask else None,
    )


def _quality(name: str, expectation: Expectation) -> DataQuality:
    return DataQuality(
        name=name,
        type="custom",
        engine=GX_ENGINE,
        implementation={"type": expectation.type, "kwargs": dict(expectation.kwargs)},
        severity=SEVERITY[expectation.severity],
        description=f"{expectation.type} {json.dumps(expectation.kwargs)}; "
        + ("blocks publication when it fails" if expectation.severity == "error" else "reported, does not block"),
    )


def _team(owner: str) -> Team:
    if owner.startswith("team:"):
        return Team(name=owner.removeprefix("team:"), description=f"Dagster owner {owner}")
    return Team(name=owner, members=[TeamMember(username=owner, role="owner")], description=f"Dagster owner {owner}")


def _sla(freshness: str | None) -> list[ServiceLevelAgreementProperty] | None:
    if freshness is None:
        return None
    match = DURATION_PATTERN.match(freshness)
    assert match
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


def to_odcs(descriptor: Descriptor, product: Product) -> OpenDataContractStandard:
    ref = f"{descriptor.domain}.{product.name}"
    return OpenDataContractStandard(
        apiVersion=API_VERSION,
        kind="DataContract",
        id=ref,
        name=product.name,
        version=CONTRACT_VERSION,
        status="active",
        domain=descriptor.domain,
        dataProduct=product.name,
        tags=[descriptor.business_process],
        description=Description(purpose=product.value.strip(), usage=product.description),
        schema=[
            SchemaObject(
                name=product.name,
                physicalName=f"{descriptor.domain}.{product.name}",
                logicalType="object",
                physicalType="table",
                description=product.description,
                properties=[_property(product, c) for c in product.columns],
                quality=[_quality(name, e) for name, e in product.named_expectations()] or None,
            )
        ],
        team=_team(descriptor.owner_of(product)),
        roles=_roles(product.access),
        slaProperties=_sla(product.freshness),
    )


def to_yaml(descriptor: Descriptor, product: Product) -> str:
    return to_odcs(descriptor, product).to_yaml()


def _owner(team: Any) -> str:
    if isinstance(team, Team) and team.members:
        owners = [m.username for m in team.members if m.role == "owner" and m.username]
        if owners:
            return owners[0]
    if isinstance(team, Team) and team.name:
        return team.name if "@" in team.name else f"team:{team.name}"
    raise ContractError("the contract names no owner (team.name or a team member with role 'owner')")


def _freshness(sla: list[ServiceLevelAgreementProperty] | None) -> str | None:
    latency = [s for s in sla or [] if s.property == "latency"]
    if not latency:
        return None
    units = {v: k for k, v in UNITS.items()}
    if latency[0].unit not in units:
        raise ContractError(f"slaProperties latency unit {latency[0].unit!r} is not one of {', '.join(units)}")
    return f"{latency[0].value}{units[latency[0].unit]}"


def _column(prop: SchemaProperty) -> Column:
    if prop.physicalType not in COLUMN_TYPE:
        raise ContractError(
            f"property {prop.name!r}: physicalType {prop.physicalType!r} is not one of {list(COLUMN_TYPE)}"
        )
    mask = next((c.value for c in prop.customProperties or [] if c.property == "mask"), None)
    return Column(
        name=prop.name,
        type=COLUMN_TYPE[prop.physicalType],
        description=prop.description,
        classification=prop.classification,
        mask=mask,
    )


def _expectation(rule: DataQuality) -> Expectation:
    if rule.engine != GX_ENGINE or not isinstance(rule.implementation, dict):
        raise ContractError(f"quality rule {rule.name!r} is not a Great Expectations expectation")
    severity = {v: k for k, v in SEVERITY.items()}.get(rule.severity or "error")
    return Expectation(
        type=rule.implementation["type"], kwargs=rule.implementation.get("kwargs") or {}, severity=severity
    )


def from_odcs(doc: OpenDataContractStandard) -> ContractedProduct:
    """Read an ODCS document (as `to_odcs` writes them) back into the platform's product model."""
    if not doc.schema_ or len(doc.schema_) != 1:
        raise ContractError("a product contract has exactly one schema object")
    obj = doc.schema_[0]
    roles = doc.roles or []
    try:
        product = Product(
            name=obj.name,
            description=obj.description,
            value=doc.description.purpose if doc.description else None,
            columns=[_column(p) for p in obj.properties or []],
            expectations=[_expectation(q) for q in obj.quality or []],
            freshness=_freshness(doc.slaProperties),
            access=Access(
                consumers=[r.role.split(":", 1)[1] for r in roles if r.role and r.role.startswith(f"{CONSUMER}:")],
                pii_readers=[r.role.split(":", 1)[1] for r in roles if r.role and r.role.startswith(f"{PII_READER}:")],
            ),
        )
    except ValueError as exc:  # pydantic's ValidationError included
        raise ContractError(f"the contract does not describe a valid product: {exc}") from exc
    if not doc.domain:
        raise ContractError("the contract names no domain")
    return ContractedProduct(doc.domain, _owner(doc.team), product)


def from_yaml(text: str) -> ContractedProduct:
    return from_odcs(OpenDataContractStandard.from_string(text))
