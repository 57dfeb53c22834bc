"""A product's descriptor entry from an ODCS 3.x document (`mesh import-contract FILE`).

What the document says becomes the product's entry in `domains/<domain>/domain.yaml`:

- `domain`, and the one schema object's `name`, say which product it is (`id`, when it is
  `<domain>.<product>`, must agree); `team` is its owner (`team:<name>`, or a member with role `owner`).
- each property is a column: its type from `physicalType` (DuckDB's or PostgreSQL's names) or else
  `logicalType`, its `description`, `classification` (public, internal or pii) and the custom property
  `mask`.
- quality rules become expectations with their severity (`odcs_quality`); `required`, `unique`,
  `primaryKey` and `logicalTypeOptions` (minimum, maximum, pattern, minLength, maxLength) too, as
  blocking expectations, unless a rule already says the same. `text` rules are documentation.
- `description.purpose` is the product's value, the schema's description (or `description.usage`)
  its description, the `latency` SLA its freshness, the roles `consumer:<domain>` and
  `pii_reader:<domain>` its access agreement.

A new product gets the code that builds it, as `mesh new-product` writes it (a new domain as
`mesh new-domain` does), with example rows that satisfy its expectations. An existing product's entry
is replaced in place; every other line of the file is kept. Rules that came from a code suite
(`meshSuite`) are left to the code when the domain's code defines that suite, and become
expectations otherwise. A contract whose team is not the product's (or, for a new product, the
domain's) owner is refused: it would hand another team's product to someone else. So is an update
that would loosen masking or access (a pii column made public or masked by a policy that shows more,
a consumer or pii reader added) — the owner changes those in the descriptor by hand, where review
sees it — and a contract whose version is older than the product's (it would take it back).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from open_data_contract_standard.model import (
    DataQuality,
    OpenDataContractStandard,
    Role,
    SchemaProperty,
    ServiceLevelAgreementProperty,
    Team,
    TeamMember,
)
from pydantic import ValidationError

from mesh_platform.contracts.changes import MASK_RANK
from mesh_platform.contracts.odcs_export import CONSUMER, MASK_PROPERTY, PHYSICAL, PII_READER
from mesh_platform.contracts.odcs_quality import ContractError, from_quality, severity_of, suite_of
from mesh_platform.descriptor.model import OWNER_PATTERN, Access, Column, Descriptor, Expectation, Product
from mesh_platform.governance.masking import column_policy
from mesh_platform.project.locations import MeshHome
from mesh_platform.text import one_line

API_VERSION = re.compile(r"^v3\.\d+\.\d+$")
# column type of each physical type, as DuckDB or PostgreSQL names it (lower case, without parameters)
PHYSICAL_TYPES = {name.lower(): kind for names in PHYSICAL.values() for kind, name in names.items()} | {
    "text": "string",
    "string": "string",
    "char": "string",
    "character varying": "string",
    "int": "integer",
    "int4": "integer",
    "int32": "integer",
    "int8": "bigint",
    "int64": "bigint",
    "long": "bigint",
    "float8": "double",
    "float64": "double",
    "bool": "boolean",
    "timestamp without time zone": "timestamp",
    "datetime": "timestamp",
}
LOGICAL_TYPES = {
    "string": "string",
    "integer": "bigint",
    "number": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
LOGICAL_OF = {"string": "string", "integer": "integer", "bigint": "integer", "double": "number"}
CLASSIFICATIONS = ("public", "internal", "pii")
DEFAULT_VERSION = "1.0"
# what a contract says about a product and its columns; the rest of an entry is kept on update
CONTRACT_FIELDS = frozenset({"description", "value", "columns", "expectations", "freshness", "access", "version"})
COLUMN_FIELDS = frozenset({"name", "type", "description", "classification", "mask"})
LATENCY_UNITS = {"m": "m", "min": "m", "minute": "m", "minutes": "m", "h": "h", "hr": "h", "hour": "h", "hours": "h"}
LATENCY_UNITS |= {"d": "d", "day": "d", "days": "d"}


@dataclass(frozen=True)
class ContractedProduct:
    """What an ODCS document says about a product: where it lives, who owns it, and the product."""

    domain: str
    owner: str
    product: Product  # `owner` left unset: it is `ContractedProduct.owner`
    origins: tuple[str, ...] = ()  # the contract field each of `product.expectations` comes from
    suite_rules: tuple[tuple[str, Expectation, str], ...] = ()  # (suite, expectation, field) from code suites
    business_process: str | None = None
    version: str | None = None  # MAJOR.MINOR
    notes: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.domain}.{self.product.name}"


class InvalidContract(ValueError):
    """A document that is not an ODCS 3.x product contract the mesh can use: one line, naming file,
    line and field."""


# --- parts of the document -------------------------------------------------------------------------------


def _errors(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _column_type(prop: SchemaProperty, where: str) -> str:
    if prop.physicalType:
        base = re.sub(r"\s*\(.*\)\s*$", "", prop.physicalType.strip()).lower()
        if base not in PHYSICAL_TYPES:
            known = ", ".join(sorted({n for names in PHYSICAL.values() for n in names.values()}))
            raise ContractError(
                f"{where}.physicalType", f"{prop.physicalType!r} is not a column type the mesh knows ({known})"
            )
        kind = PHYSICAL_TYPES[base]
        logical = (prop.logicalType or "").lower()
        if logical and LOGICAL_OF.get(kind, kind) != logical:
            raise ContractError(
                f"{where}.logicalType", f"{prop.logicalType!r} contradicts physicalType {prop.physicalType!r}"
            )
        return kind
    if not prop.logicalType:
        raise ContractError(where, "missing: a property needs a physicalType or a logicalType")
    if prop.logicalType.lower() not in LOGICAL_TYPES:
        known = ", ".join(LOGICAL_TYPES)
        raise ContractError(f"{where}.logicalType", f"{prop.logicalType!r} has no column type in the mesh ({known})")
    return LOGICAL_TYPES[prop.logicalType.lower()]


def _column(prop: SchemaProperty, where: str) -> Column:
    if not prop.name:
        raise ContractError(f"{where}.name", "missing")
    if not (prop.description or "").strip():
        raise ContractError(f"{where}.description", "missing: every column of a product is described")
    classification = (prop.classification or "internal").strip().lower()
    if classification not in CLASSIFICATIONS:
        allowed = ", ".join(CLASSIFICATIONS)
        raise ContractError(f"{where}.classification", f"{prop.classification!r} is not one of {allowed}")
    mask = next((c.value for c in prop.customProperties or [] if c.property == MASK_PROPERTY), None)
    try:
        return Column(
            name=prop.name,
            type=_column_type(prop, where),  # type: ignore[arg-type]
            description=prop.description,
            classification=classification,  # type: ignore[arg-type]
            mask=mask,
        )
    except ValidationError as exc:
        raise ContractError(where, _errors(exc)) from None


def _owner(team: Team | list[TeamMember] | None) -> str:
    members = team.members if isinstance(team, Team) else team
    owners = [m.username for m in members or [] if (m.role or "").lower() == "owner" and m.username]
    if owners:
        owner, where = owners[0], "team.members"
    elif isinstance(team, Team) and team.name:
        owner, where = (team.name if "@" in team.name else f"team:{team.name}"), "team.name"
    else:
        raise ContractError("team", "missing: the contract names no owner (team.name, or a member with role owner)")
    if not OWNER_PATTERN.match(owner):
        raise ContractError(
            where, f"{owner!r} is not a Dagster owner: a team name (letters, digits, _ . -) or an email"
        )
    return owner


def _freshness(sla: list[ServiceLevelAgreementProperty] | None) -> str | None:
    for i, item in enumerate(sla or []):
        if (item.property or "").lower() != "latency":
            continue
        unit = LATENCY_UNITS.get((item.unit or "").lower())
        if unit is None:
            raise ContractError(f"slaProperties[{i}].unit", f"{item.unit!r} is not a latency unit (min, h, d)")
        if not isinstance(item.value, int) or isinstance(item.value, bool):
            raise ContractError(f"slaProperties[{i}].value", f"{item.value!r} is not a whole number of {item.unit}")
        return f"{item.value}{unit}"
    return None


def _access(roles: list[Role] | None) -> tuple[Access, list[str]]:
    consumers, readers, ignored = [], [], []
    for role in roles or []:
        kind, _, domain = (role.role or "").partition(":")
        if kind == CONSUMER and domain:
            consumers.append(domain)
        elif kind == PII_READER and domain:
            readers.append(domain)
        else:
            ignored.append(role.role or "")
    try:
        access = Access(consumers=consumers, pii_readers=readers)
    except ValidationError as exc:
        raise ContractError("roles", _errors(exc)) from None
    notes = (
        [f"roles {', '.join(map(repr, ignored))} are not access agreements of the mesh: left out"] if ignored else []
    )
    return access, notes


def _expectation(type_: str, kwargs: dict[str, Any], severity: str, where: str, columns: set[str]) -> Expectation:
    try:
        expectation = Expectation(type=type_, kwargs=kwargs, severity=severity)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ContractError(where, _errors(exc)) from None
    missing = [c for c in expectation.columns if c not in columns]
    if missing:
        raise ContractError(where, f"{type_} names column {missing[0]!r}, which the schema does not declare")
    return expectation


def _flag_rules(props: list[SchemaProperty]) -> list[tuple[str, dict[str, Any], str]]:
    """Blocking expectations that `required`, `unique`, `primaryKey` and `logicalTypeOptions` state."""
    found: list[tuple[str, dict[str, Any], str]] = []
    keys = [p.name for p in props if p.primaryKey]
    for i, prop in enumerate(props):
        where, column = f"schema[0].properties[{i}]", prop.name
        if prop.required or prop.primaryKey:
            found.append(("expect_column_values_to_not_be_null", {"column": column}, f"{where}.required"))
        if prop.unique or (prop.primaryKey and len(keys) == 1):
            found.append(("expect_column_values_to_be_unique", {"column": column}, f"{where}.unique"))
        options = prop.logicalTypeOptions or {}
        bounds = {k: options[o] for k, o in (("min_value", "minimum"), ("max_value", "maximum")) if o in options}
        if bounds:
            found.append(
                ("expect_column_values_to_be_between", {"column": column, **bounds}, f"{where}.logicalTypeOptions")
            )
        if "pattern" in options:
            regex = {"column": column, "regex": str(options["pattern"])}
            found.append(("expect_column_values_to_match_regex", regex, f"{where}.logicalTypeOptions.pattern"))
        lengths = {k: options[o] for k, o in (("min_value", "minLength"), ("max_value", "maxLength")) if o in options}
        if lengths:
            lengths = {"column": column, **lengths}
            found.append(("expect_column_value_lengths_to_be_between", lengths, f"{where}.logicalTypeOptions"))
    if len(keys) > 1:
        found.append(("expect_compound_columns_to_be_unique", {"column_list": keys}, "schema[0].properties.primaryKey"))
    return found


@dataclass
class _Rules:
    columns: set[str]
    expectations: list[Expectation] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    suites: list[tuple[str, Expectation, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def said(self, type_: str, kwargs: dict[str, Any]) -> bool:
        key = (type_, json.dumps(kwargs, sort_keys=True, default=str))
        stated = [*self.expectations, *(e for _, e, _ in self.suites)]
        return any((e.type, json.dumps(e.kwargs, sort_keys=True, default=str)) == key for e in stated)

    def add(self, rule: DataQuality, column: str | None, where: str) -> None:
        found = from_quality(rule, column, where)
        if not found and (rule.type or "").lower() == "text":
            self.notes.append(f"{where} is a text rule (documentation): no expectation checks it")
        severity = severity_of(rule, where)
        for type_, kwargs in found:
            expectation = _expectation(type_, kwargs, severity, where, self.columns)
            if suite := suite_of(rule):
                self.suites.append((suite, expectation, where))
            else:
                self.expectations.append(expectation)
                self.origins.append(where)


def from_odcs(doc: OpenDataContractStandard) -> ContractedProduct:
    """Read an ODCS document into the platform's product model; ContractError names the field."""
    from mesh_platform.scaffold.name_rules import InvalidName, check_name

    if not doc.schema_ or len(doc.schema_) != 1:
        raise ContractError("schema", f"a product contract has exactly one schema object, got {len(doc.schema_ or [])}")
    obj = doc.schema_[0]
    if not doc.domain:
        raise ContractError("domain", "missing: the contract names the domain that owns the product")
    if not obj.name:
        raise ContractError("schema[0].name", "missing: the schema object is named after the product")
    for name, where, what in ((doc.domain, "domain", "domain"), (obj.name, "schema[0].name", "product")):
        try:
            check_name(name, what)
        except InvalidName as exc:
            raise ContractError(where, str(exc)) from None
    if doc.id and "." in doc.id and doc.id != f"{doc.domain}.{obj.name}":
        raise ContractError(
            "id", f"{doc.id!r} names another product than domain and schema[0].name ({doc.domain}.{obj.name})"
        )
    props = list(obj.properties or [])
    if not props:
        raise ContractError("schema[0].properties", "missing: a product has at least one column")
    columns = [_column(p, f"schema[0].properties[{i}]") for i, p in enumerate(props)]
    rules = _Rules({c.name for c in columns})
    for i, prop in enumerate(props):
        for j, rule in enumerate(prop.quality or []):
            rules.add(rule, prop.name, f"schema[0].properties[{i}].quality[{j}]")
    for j, rule in enumerate(obj.quality or []):
        rules.add(rule, None, f"schema[0].quality[{j}]")
    for type_, kwargs, where in _flag_rules(props):
        if not rules.said(type_, kwargs):
            rules.expectations.append(_expectation(type_, kwargs, "error", where, rules.columns))
            rules.origins.append(where)
    access, notes = _access(doc.roles)
    purpose = doc.description.purpose if doc.description else None
    if not (purpose or "").strip():
        raise ContractError("description.purpose", "missing: the decision the product serves (its value)")
    description = obj.description or (doc.description.usage if doc.description else None)
    if not (description or "").strip():
        raise ContractError("schema[0].description", "missing: what the product is (or description.usage)")
    semver = re.match(r"^(\d+)\.(\d+)(\.\d+)?([-+][0-9A-Za-z.-]+)?$", doc.version or "")
    if doc.version and not semver:  # read as no version, it would take the product's declared one away
        raise ContractError("version", f"{doc.version!r} is not a version: MAJOR.MINOR.PATCH, e.g. 2.1.0")
    version = f"{semver.group(1)}.{semver.group(2)}" if semver else None
    # the descriptor's optional `version` (MAJOR.MINOR), where the descriptor has that field; a product
    # without one is exported as 1.0.0, so 1.0 is no version
    declared = version not in (None, DEFAULT_VERSION) and "version" in Product.model_fields
    versioned = {"version": version} if declared else {}
    try:
        product = Product(
            **versioned,
            name=obj.name,
            description=description,
            value=purpose,
            columns=columns,
            expectations=rules.expectations,
            freshness=_freshness(doc.slaProperties),
            access=access,
        )
    except ValidationError as exc:
        raise ContractError("schema[0]", _errors(exc)) from None
    return ContractedProduct(
        doc.domain,
        _owner(doc.team),
        product,
        tuple(rules.origins),
        tuple(rules.suites),
        (doc.tags or [None])[0],
        version,
        tuple(notes + rules.notes),
    )


def _document(data: Any) -> OpenDataContractStandard:
    if not isinstance(data, dict):
        raise ContractError("", "the document is not a YAML mapping, so not an ODCS data contract")
    if data.get("kind") != "DataContract" or not API_VERSION.match(str(data.get("apiVersion", ""))):
        where = "kind" if data.get("kind") != "DataContract" else "apiVersion"
        raise ContractError(
            where,
            f"{data.get(where)!r}: not an ODCS 3.x data contract (kind: DataContract, apiVersion: v3.x.y)",
        )
    try:
        return OpenDataContractStandard.model_validate(data)
    except ValidationError as exc:
        raise ContractError("", _errors(exc)) from None


def from_yaml(text: str) -> ContractedProduct:
    """`from_odcs` of a document's YAML text."""
    return from_odcs(_document(yaml.safe_load(text)))


def _check_expectations(contracted: ContractedProduct) -> None:
    """Every expectation as Great Expectations builds it: arguments it refuses are the contract's error."""
    from mesh_platform.checks.evaluate import gx_expectation

    pairs = list(zip(contracted.product.expectations, contracted.origins, strict=True))
    pairs += [(e, where) for _, e, where in contracted.suite_rules]
    for expectation, where in pairs:
        try:
            gx_expectation(expectation.type, dict(expectation.kwargs))
        except Exception as exc:  # GX's own validation error: the rule's arguments are wrong
            detail = one_line(str(exc))[:300]
            raise ContractError(where, f"Great Expectations refuses {expectation.type}: {detail}") from None


def read_contract(path: Path, rel: str) -> ContractedProduct:
    """Read an ODCS file within the descriptors' bounds, and check its expectations as Great
    Expectations builds them; InvalidContract says what is wrong, where."""
    from mesh_platform.descriptor.load import read_yaml

    document = read_yaml(path, rel, "contract")
    if document.problems:
        raise InvalidContract(str(document.problems[0]))
    try:
        contracted = from_odcs(_document(document.data))
        _check_expectations(contracted)
    except ContractError as exc:
        line = document.line_of(exc.field) or 1
        field_part = f" {exc.field}:" if exc.field else ""
        raise InvalidContract(f"{rel}:{line}:{field_part} {exc.message}") from None
    return contracted


# --- into the descriptor ---------------------------------------------------------------------------------


class ImportRefused(Exception):
    """The contract may not change the mesh as it asks (another team's product or domain)."""


@dataclass
class Imported:
    ref: str
    action: str  # created | updated | unchanged
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _key(expectation: Expectation) -> str:
    return json.dumps(expectation.model_dump(), sort_keys=True, default=str)


def _merged(existing: Product, contracted: Product) -> Product:
    """`contracted` over `existing`: what the contract says replaces what the entry said; what a contract
    cannot say (an owner of its own, declared column lineage, any other field) stays as the entry had it."""
    data, new = existing.model_dump(), contracted.model_dump()
    for key in CONTRACT_FIELDS & new.keys():
        if not (key == "version" and new[key] is None and data.get(key) == DEFAULT_VERSION):
            data[key] = new[key]
    before = {c["name"]: c for c in existing.model_dump()["columns"]}
    data["columns"] = [
        {
            **{k: v for k, v in before.get(c["name"], {}).items() if k not in COLUMN_FIELDS},
            **{k: c[k] for k in COLUMN_FIELDS},
        }
        for c in new["columns"]
    ]
    if sorted(map(_key, contracted.expectations)) == sorted(map(_key, existing.expectations)):
        data["expectations"] = existing.model_dump()["expectations"]  # the same rules: the file's order
    return Product.model_validate(data)


def _with_suites(mesh: Any, contracted: ContractedProduct, notes: list[str]) -> Product:
    """The product with the rules of code suites the domain's code does not define as expectations."""
    product = contracted.product
    if not contracted.suite_rules:
        return product
    defined: set[str] = set()
    if contracted.domain in mesh.descriptors:
        from mesh_platform.contracts.odcs_export import product_suites

        defined = {s.name for s in product_suites(mesh, contracted.domain, product.name)}
    added = [e for suite, e, _ in contracted.suite_rules if suite not in defined]
    kept = sorted({suite for suite, _, _ in contracted.suite_rules if suite in defined})
    if kept:
        notes.append(f"rules of the code suite(s) {', '.join(kept)} are left to the domain's code, which defines them")
    if added:
        names = sorted({suite for suite, _, _ in contracted.suite_rules if suite not in defined})
        notes.append(f"rules of the code suite(s) {', '.join(names)} become expectations: no @suite defines them here")
    return product.model_copy(update={"expectations": [*product.expectations, *added]})


def _replace_entry(mesh: Any, descriptor: Descriptor, product: Product) -> str:
    from mesh_platform.descriptor.load import DESCRIPTOR_FILE
    from mesh_platform.scaffold.contract_product import product_entry
    from mesh_platform.scaffold.new_product import with_product_replaced

    path = mesh.project.domain_dir(descriptor.domain) / DESCRIPTOR_FILE
    file = mesh.files[descriptor.domain]
    try:
        text = with_product_replaced(path.read_text(), product.name, product_entry(product))
        updated = Descriptor.model_validate(yaml.safe_load(text))
    except ValueError as exc:
        raise ImportRefused(f"cannot update {product.name} in {file}: {exc}") from exc
    except yaml.YAMLError as exc:  # the entry held an anchor that other entries refer to, or the like
        problem = one_line(str(getattr(exc, "problem", None) or "invalid YAML"))
        raise ImportRefused(
            f"cannot update {product.name} in {file}: with the entry replaced the file is not YAML ({problem}); "
            "the file uses YAML anchors or aliases across entries: edit the entry by hand"
        ) from None
    expected = [product if p.name == product.name else p for p in descriptor.products]
    if updated.model_copy(update={"products": descriptor.products}) != descriptor or updated.products != expected:
        raise ImportRefused(f"cannot update {product.name} in {file}: its layout is not one this tool edits")
    return text


def _version_key(version: str | None) -> tuple[int, int]:
    major, minor = (version or DEFAULT_VERSION).split(".")[:2]
    return int(major), int(minor)


def _refuse_going_back(contracted: ContractedProduct, existing: Product) -> None:
    """A contract older than the product (exported before its last version) would take it back."""
    was = getattr(existing, "version", None) or DEFAULT_VERSION
    if _version_key(contracted.version) < _version_key(was):
        raise ImportRefused(
            f"{contracted.ref} is at version {was}; the contract is {contracted.version or DEFAULT_VERSION}, older: "
            "export the contract again and edit that"
        )


def published_pii(home: MeshHome, domain: str, name: str) -> dict[str, str]:
    """The pii columns of `domain.name` as its kept published versions declared them, each with the
    policy that masked it most. `ImportRefused` when the store cannot say (a damaged `current.json`
    or version index): without the history a dropped pii column could come back unmasked."""
    from mesh_platform.storage.product_store import DamagedStore, ProductStore, pii_policies

    store = ProductStore(home)
    try:
        current = store.current(domain, name)
        history = [v.pii for v in store.versions(domain, name).versions]
    except (OSError, DamagedStore) as exc:
        raise ImportRefused(
            f"the published versions of {domain}.{name} cannot be read ({type(exc).__name__}: "
            f"{one_line(str(exc))[:200]}), so what they masked is not known; repair the files under "
            f"{home.product_dir(domain, name)} or edit the entry by hand"
        ) from None
    if current is not None:
        history.append(pii_policies(current.contract))
    masked: dict[str, str] = {}
    for policies in history:
        for column, policy in (policies or {}).items():
            if MASK_RANK.get(policy, 2) >= MASK_RANK.get(masked.get(column), 0):
                masked[column] = policy
    return masked


def governance_loosened(existing: Product, product: Product, published: dict[str, str] | None = None) -> list[str]:
    """What `product` opens up that `existing` kept closed: a pii column no longer pii or masked by a
    policy that shows more, a consumer or a pii reader added. A column `existing` no longer has is
    held to what its published versions masked it with (`published`, see `published_pii`), so
    dropping a pii column in one import and adding it back public in the next opens nothing."""
    opened = []
    before = {c.name: column_policy(c.classification, c.mask) for c in existing.columns}
    for column in product.columns:
        was = before[column.name] if column.name in before else (published or {}).get(column.name)
        policy = column_policy(column.classification, column.mask)
        if was is not None and policy != was and MASK_RANK.get(policy, 0) <= MASK_RANK.get(was, 0):
            shown = f"{column.classification}, raw values" if policy is None else f"masked by {policy}"
            since = "" if column.name in before else " in a published version"
            opened.append(f"column {column.name}: pii masked by {was}{since} -> {shown}")
    for role in ("consumers", "pii_readers"):
        if role == "consumers" and "*" in existing.access.consumers:
            continue  # every domain was granted already
        added = sorted(set(getattr(product.access, role)) - set(getattr(existing.access, role)))
        if added:
            opened.append(f"{role} {', '.join(added)} added")
    return opened


def import_contract(mesh: Any, contracted: ContractedProduct, source: str) -> Imported:
    """Create or update the contracted product's entry (and, when new, the code that builds it)."""
    from mesh_platform.descriptor.load import DESCRIPTOR_FILE
    from mesh_platform.descriptor.rules import product_rules
    from mesh_platform.scaffold.apply import apply
    from mesh_platform.scaffold.contract_product import ContractProduct
    from mesh_platform.scaffold.new_domain import plan_new_domain
    from mesh_platform.scaffold.new_product import plan_new_product
    from mesh_platform.scaffold.plan import FilePlan

    domain, name, owner = contracted.domain, contracted.product.name, contracted.owner
    notes = list(contracted.notes)
    exists = domain in mesh.project.domain_names()
    descriptor = mesh.descriptors.get(domain)
    if exists and descriptor is None:
        raise ImportRefused(f"{mesh.files[domain]} has problems; fix them first (see `mesh validate`)")
    product = _with_suites(mesh, contracted, notes)
    if descriptor is not None and (existing := descriptor.product(name)) is not None:
        current = descriptor.owner_of(existing)
        if owner != current:
            raise ImportRefused(
                f"{contracted.ref} is owned by {current}; the contract names {owner}: importing it would "
                "overwrite another team's product and change its owner"
            )
        _refuse_going_back(contracted, existing)
        product = _merged(existing, product)
        if product == existing:
            return Imported(contracted.ref, "unchanged", notes=notes)
        if opened := governance_loosened(existing, product, published_pii(mesh.project.home, domain, name)):
            raise ImportRefused(
                f"the contract would open up {contracted.ref}: {'; '.join(opened)}. An imported contract never "
                f"loosens masking or access; the owner changes them in {mesh.files[domain]} by hand, "
                "where review sees it"
            )
        text = _replace_entry(mesh, descriptor, product)
        updated = Descriptor.model_validate(yaml.safe_load(text))
        if problems := product_rules(updated, mesh.files[domain]):
            raise ImportRefused(str(problems[0]))
        plan = FilePlan(mesh.project.root)
        plan.write(mesh.project.domain_dir(domain) / DESCRIPTOR_FILE, text)
        if [c.model_dump() for c in product.columns] != [c.model_dump() for c in existing.columns]:
            notes.append(f"the columns changed: make the code that builds {name} build them (mesh validate, mesh run)")
        result = apply(mesh, plan, None, notes)
        return Imported(contracted.ref, "updated", result.created, result.changed, result.notes)
    content = ContractProduct(product, f"the ODCS contract {source}")
    notes += content.notes
    if descriptor is not None:
        if owner != descriptor.owner:
            raise ImportRefused(
                f"domain {domain} is owned by {descriptor.owner}; the contract names {owner}: a team adds products "
                "to its own domain only"
            )
        new_plan, dbt_domain = plan_new_product(mesh, domain, name, None, content)
    else:
        description = f"The {domain} domain, created from the ODCS contract of {contracted.ref}: say what it is for."
        new_plan, more = plan_new_domain(
            mesh,
            domain,
            owner,
            [],
            "python",
            name,
            business_process=contracted.business_process,
            description=description,
            content=content,
        )
        notes += more
        dbt_domain = None
    result = apply(mesh, new_plan, dbt_domain, notes)
    return Imported(contracted.ref, "created", result.created, result.changed, result.notes)
