"""Column-level lineage across domains, derived from the code.

For each domain, every product column is traced back through the SQL that builds it: dbt models
through the SQL dbt compiles (`lineage.dbt_sql`), Python assets through the SQL their functions
return (`lineage.python_sql`), both read with sqlglot (`lineage.sql_columns`). A column read from
one of the domain's own assets is traced on into that asset, as far as its code says (an ingestion
that loads files itself is where it stops); a column read from another domain's product is an edge
across domains, which that domain's analysis continues. Where an asset's code cannot be analysed,
the product's descriptor may declare `derived_from` per column; such edges are flagged `declared`
wherever they are shown.

`MeshColumns` joins the domains: upstream and downstream of every column, and which consumers use
a product's column (for `mesh check-change`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.problems import Problem
from mesh_platform.lineage.sql_columns import DIRECT, INDIRECT, TRANSFORMATION, NotAnalysable, QueryColumns, Use
from mesh_platform.project.mesh import Mesh
from mesh_platform.sdk import AssetFn

DBT, PYTHON, DECLARED, NOT_ANALYSED = "dbt", "python", "declared", "not analysed"
SchemaOf = Callable[[str], "set[str] | None"]


@dataclass(frozen=True, order=True)
class Edge:
    """Column `target` is made from (or, INDIRECT, depends on) column `source`; both `<domain>.<asset>.<column>`."""

    target: str
    source: str
    kind: str
    subtype: str
    declared: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "kind": self.kind,
            "subtype": self.subtype,
            "declared": self.declared,
        }


@dataclass
class AssetColumns:
    """One asset's column lineage: how it was found, and for each column it was asked about, the
    columns of the relations it reads that make it."""

    ref: str  # <domain>.<asset>
    how: str  # dbt | python | declared | not analysed
    reads: tuple[str, ...]
    is_product: bool
    reason: str | None = None  # why the code was not analysed
    file: str | None = None
    line: int | None = None
    columns: dict[str, list[Use]] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)  # columns whose lineage is declared, not derived
    dataset: list[Use] = field(default_factory=list)  # columns used to filter, join, group or sort
    missing: set[str] = field(default_factory=set)  # columns asked for that its SQL does not make
    unknown: set[str] = field(default_factory=set)  # columns asked for whose lineage is not known

    @property
    def domain(self) -> str:
        return self.ref.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.ref.split(".", 1)[1]

    def edges(self) -> list[Edge]:
        return [
            Edge(f"{self.ref}.{column}", f"{u.relation}.{u.column}", u.kind, u.subtype, column in self.declared)
            for column, uses in self.columns.items()
            for u in uses
        ]


@dataclass
class DomainColumns:
    domain: str
    assets: dict[str, AssetColumns] = field(default_factory=dict)  # by asset name
    warnings: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def declared_schema(mesh: Mesh) -> SchemaOf:
    """Columns of each product as its descriptor declares them (None: not a product)."""

    def schema_of(ref: str) -> set[str] | None:
        domain, _, name = ref.partition(".")
        descriptor = mesh.descriptors.get(domain)
        product = descriptor.product(name) if descriptor else None
        return {c.name for c in product.columns} if product else None

    return schema_of


@dataclass
class _Source:
    """An asset's SQL and how to name the relations in it."""

    sql: str | None
    how: str
    reason: str | None
    reads: tuple[str, ...]
    relations: dict[tuple[str, str], str]
    file: str | None
    line: int | None
    columns: tuple[str, ...] = ()  # columns a dbt yml declares


def _sources(mesh: Mesh, descriptor: Descriptor, fns: Sequence[AssetFn]) -> tuple[dict[str, _Source], list[Problem]]:
    from mesh_platform.lineage.python_sql import plan

    domain = descriptor.domain
    project = mesh.project
    sources: dict[str, _Source] = {}
    warnings: list[Problem] = []
    for fn in fns:
        planned = plan(fn, domain, project.home.path, project.root)
        sources[fn.name] = _Source(
            planned.sql, PYTHON, planned.reason, fn.reads, planned.relations, planned.file, planned.line
        )
    dbt_dir = project.dbt_project_dir(domain)
    if dbt_dir is not None:
        from mesh_platform.lineage.dbt_sql import compiled_project

        compiled = compiled_project(dbt_dir, project.dbt_dir, domain)
        if compiled.error:
            warnings.append(Problem(project.rel(dbt_dir), "", "column-lineage", compiled.error, domain=domain))
        for model in compiled.models.values():
            reason = None if model.sql else "dbt did not compile it to SQL"
            sources[model.name] = _Source(
                model.sql,
                DBT,
                reason,
                model.depends_on,
                compiled.relations,
                project.rel(dbt_dir / model.file),
                1,
                model.columns,
            )
    own = {("main", name): f"{domain}.{name}" for name in sources}
    for source in sources.values():  # a consumed product is the major the domain pins (`Mesh.resolve`)
        source.relations = {**own, **{k: mesh.resolve(domain, v) for k, v in source.relations.items()}}
    return sources, warnings


def _relation_of(relations: Mapping[tuple[str, str], str]) -> Callable[[exp.Table], str | None]:
    def relation_of(table: exp.Table) -> str | None:
        return relations.get((table.db.lower(), table.name.lower())) or relations.get(("main", table.name.lower()))

    return relation_of


def analyse_domain(
    mesh: Mesh, descriptor: Descriptor, fns: Sequence[AssetFn], schema_of: SchemaOf | None = None
) -> DomainColumns:
    """The column lineage of one domain's products, and of its own assets as far as they lead."""
    domain = descriptor.domain
    schema_of = schema_of or declared_schema(mesh)
    sources, warnings = _sources(mesh, descriptor, fns)
    result = DomainColumns(domain, warnings=warnings)
    result.problems = _declared_problems(mesh, descriptor, set(sources))

    def schema(ref: str) -> set[str] | None:
        known = schema_of(ref)
        if known is not None:
            return known
        own = sources.get(ref.split(".", 1)[1]) if ref.startswith(f"{domain}.") else None
        return set(own.columns) if own is not None and own.columns else None

    queries: dict[str, QueryColumns | None] = {}

    def query(name: str) -> QueryColumns | None:
        if name not in queries:
            source = sources[name]
            queries[name] = None
            if source.sql is not None:
                refs = set(source.relations.values())
                schemas = {r: s for r in refs if (s := schema(r)) is not None}
                try:
                    queries[name] = QueryColumns(source.sql, _relation_of(source.relations), schemas)
                except NotAnalysable as exc:
                    source.reason = str(exc)
        return queries[name]

    def asset(name: str) -> AssetColumns:
        if name not in result.assets:
            source = sources[name]
            q = query(name)
            product = descriptor.product(name)
            result.assets[name] = AssetColumns(
                f"{domain}.{name}",
                source.how if q is not None else NOT_ANALYSED,
                tuple(source.reads),
                product is not None,
                None if q is not None else source.reason,
                source.file,
                source.line,
                dataset=q.dataset() if q is not None else [],
            )
        return result.assets[name]

    wanted = [(p.name, c.name) for p in descriptor.products if p.name in sources for c in p.columns]
    seen: set[tuple[str, str]] = set()
    while wanted:
        name, column = wanted.pop()
        if (name, column) in seen:
            continue
        seen.add((name, column))
        target, q = asset(name), query(name)
        if q is None:
            _declared(target, descriptor, column)
            continue
        uses = q.column(column)
        if uses is None:
            target.missing.add(column)
            continue
        target.columns[column] = uses
        for use in [*uses, *target.dataset]:
            upstream = use.relation.split(".", 1)
            if upstream[0] == domain and upstream[1] in sources:
                wanted.append((upstream[1], use.column))
    for name, target in result.assets.items():
        product = descriptor.product(name)
        if product is not None and target.how != NOT_ANALYSED and target.how != DECLARED:
            ignored = [c.name for c in product.columns if c.derived_from]
            if ignored:
                result.warnings.append(
                    Problem(
                        mesh.files[domain],
                        f"products[{descriptor.products.index(product)}]",
                        "derived-from-unused",
                        f"{domain}.{name}: derived_from of {', '.join(ignored)} is not used: the platform reads "
                        f"this product's lineage from its code ({target.file})",
                        domain=domain,
                    )
                )
    return result


def _declared(target: AssetColumns, descriptor: Descriptor, column: str) -> None:
    """An asset whose code is not analysed: its product's declared `derived_from`, if any."""
    product = descriptor.product(target.name)
    declared = product.column(column) if product is not None else None
    if declared is None or declared.derived_from is None:
        target.unknown.add(column)
        return
    target.columns[column] = [
        Use(ref.rsplit(".", 1)[0], ref.rsplit(".", 1)[1], DIRECT, TRANSFORMATION) for ref in declared.derived_from
    ]
    target.declared.add(column)
    target.how = DECLARED


def _declared_problems(mesh: Mesh, descriptor: Descriptor, assets: set[str]) -> list[Problem]:
    """`derived_from` names columns this domain may read: its own assets', or consumed products'
    declared columns."""
    domain = descriptor.domain
    problems = []
    for i, product in enumerate(descriptor.products):
        for j, column in enumerate(product.columns):
            for ref in column.derived_from or []:
                other, asset, name = ref.split(".")
                message = None
                if other == domain:
                    if asset not in assets:
                        message = f"{ref}: {domain} has no asset {asset!r}"
                elif f"{other}.{asset}" not in descriptor.consumed_refs:
                    message = f"{ref}: {other}.{asset} is not in consumes, so {domain} cannot read it"
                else:
                    producer = mesh.descriptors.get(other)
                    upstream = producer.product(asset) if producer else None
                    if upstream is not None and upstream.column(name) is None:
                        message = f"{ref}: {other}.{asset} declares no column {name!r}"
                if message:
                    problems.append(
                        Problem(
                            mesh.files[domain],
                            f"products[{i}].columns[{j}].derived_from",
                            "derived-from",
                            message,
                            domain=domain,
                        )
                    )
    return problems


# -- the whole mesh ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumerUse:
    """A consumer's use of a product column: where, and how."""

    consumer: str  # domain
    asset: str  # `<domain>.<asset>`: a product of the consumer, or an internal asset
    column: str | None  # the consumer's column made from it (None: used for its rows, or assumed)
    how: str  # e.g. "DIRECT/IDENTITY", "INDIRECT/JOIN", "assumed: <reason>"
    declared: bool = False

    @property
    def where(self) -> str:
        return f"{self.asset}.{self.column}" if self.column else self.asset

    def as_dict(self) -> dict[str, Any]:
        return {"consumer": self.consumer, "asset": self.asset, "column": self.column, "how": self.how}


class MeshColumns:
    """Column lineage of every analysed domain."""

    def __init__(self, domains: Mapping[str, DomainColumns], mesh: Mesh):
        self.domains = dict(domains)
        self.mesh = mesh
        self.assets = {a.ref: a for d in self.domains.values() for a in d.assets.values()}
        self.edges = sorted({e for a in self.assets.values() for e in a.edges()})
        self._up: dict[str, list[Edge]] = {}
        self._down: dict[str, list[Edge]] = {}
        for edge in self.edges:
            self._up.setdefault(edge.target, []).append(edge)
            self._down.setdefault(edge.source, []).append(edge)

    def product_columns(self) -> list[str]:
        return [f"{d.domain}.{p.name}.{c.name}" for d, p in self.mesh.products() for c in p.columns]

    def upstream(self, column: str) -> list[Edge]:
        """Every edge upstream of `column`, transitively."""
        return self._walk(column, self._up, lambda e: e.source)

    def downstream(self, column: str) -> list[Edge]:
        """Every edge downstream of `column`, transitively."""
        return self._walk(column, self._down, lambda e: e.target)

    @staticmethod
    def _walk(start: str, index: Mapping[str, list[Edge]], next_of: Callable[[Edge], str]) -> list[Edge]:
        found: list[Edge] = []
        seen, stack = {start}, [start]
        while stack:
            for edge in index.get(stack.pop(), []):
                found.append(edge)
                if next_of(edge) not in seen:
                    seen.add(next_of(edge))
                    stack.append(next_of(edge))
        return sorted(set(found))

    def dataset_users(self, column: str) -> list[tuple[AssetColumns, Use]]:
        """Assets that filter, join, group or sort on `column`."""
        relation, _, name = column.rpartition(".")
        return [(a, u) for a in self.assets.values() for u in a.dataset if u.relation == relation and u.column == name]

    def consumers_using(self, product: str, column: str | None) -> list[ConsumerUse]:
        """Where consumers (other domains) use `product`'s `column` (None: the product at all),
        named by the consumer's own products and columns where the use flows into them."""
        producer = product.split(".", 1)[0]
        uses: set[ConsumerUse] = set()
        for asset in self.assets.values():
            if asset.domain == producer or product not in asset.reads:
                continue
            if asset.unknown:
                reason = asset.reason or "its code is not analysed"
                uses.add(
                    ConsumerUse(
                        asset.domain,
                        asset.ref,
                        None,
                        f"assumed: {reason}; lineage unknown for {', '.join(sorted(asset.unknown))}",
                    )
                )
                continue
            for target, edges in self._uses_in(asset, product, column).items():
                for edge in edges:
                    uses |= self._in_consumer_products(asset.domain, target, edge)
            for use in asset.dataset:
                if use.relation == product and (column is None or use.column == column):
                    uses.add(ConsumerUse(asset.domain, asset.ref, None, f"{use.kind}/{use.subtype} on {use.column}"))
        return sorted(uses, key=lambda u: (u.consumer, u.asset, u.column or "", u.how))

    def _uses_in(self, asset: AssetColumns, product: str, column: str | None) -> dict[str, list[Edge]]:
        found: dict[str, list[Edge]] = {}
        for edge in asset.edges():
            relation, _, name = edge.source.rpartition(".")
            if relation == product and (column is None or name == column):
                found.setdefault(edge.target, []).append(edge)
        return found

    def _in_consumer_products(self, consumer: str, target: str, edge: Edge) -> set[ConsumerUse]:
        """`target` (a column of the consumer's) as the consumer's product columns it flows into."""
        how = f"{edge.kind}/{edge.subtype}" + (" (declared)" if edge.declared else "")
        relation, _, name = target.rpartition(".")
        here = self.assets.get(relation)
        if here is not None and here.is_product:
            return {ConsumerUse(consumer, relation, name, how, edge.declared)}
        inside = [e for e in self.downstream(target) if e.target.split(".", 1)[0] == consumer]
        products = {
            e.target for e in inside if (a := self.assets.get(e.target.rpartition(".")[0])) is not None and a.is_product
        }
        if not products:
            return {ConsumerUse(consumer, relation, name, how, edge.declared)}
        return {ConsumerUse(consumer, p.rpartition(".")[0], p.rpartition(".")[2], how, edge.declared) for p in products}


def mesh_columns(mesh: Mesh, schema_of: SchemaOf | None = None, domains: Iterable[str] | None = None) -> MeshColumns:
    """Analyse every valid domain (or `domains`); a domain whose code does not load is left out with
    a warning in its `DomainColumns`."""
    from mesh_platform.lineage.domain_code import domain_asset_functions

    analysed = {}
    for domain in domains if domains is not None else mesh.domains:
        descriptor = mesh.descriptors.get(domain)
        if descriptor is None or mesh.problems_for(domain):
            continue
        fns, problems = domain_asset_functions(mesh, domain)
        if problems:
            analysed[domain] = DomainColumns(domain, warnings=problems)
            continue
        analysed[domain] = analyse_domain(mesh, descriptor, fns, schema_of)
    return MeshColumns(analysed, mesh)


def direct_parents(asset: AssetColumns) -> dict[str, list[tuple[str, str]]]:
    """For each column of `asset`, the (asset ref, column) pairs it is made from, one hop up."""
    return {column: sorted({(u.relation, u.column) for u in uses}) for column, uses in sorted(asset.columns.items())}


def uses_as_json(uses: Iterable[Use]) -> list[dict[str, str]]:
    return [{"from": f"{u.relation}.{u.column}", "kind": u.kind, "subtype": u.subtype} for u in uses]


__all__ = [
    "DBT",
    "DECLARED",
    "DIRECT",
    "INDIRECT",
    "NOT_ANALYSED",
    "PYTHON",
    "AssetColumns",
    "ConsumerUse",
    "DomainColumns",
    "Edge",
    "MeshColumns",
    "analyse_domain",
    "declared_schema",
    "direct_parents",
    "mesh_columns",
]
