"""Column lineage of one SQL query, read with sqlglot: which columns of which relations each output
column is made from, and which columns the query uses to filter, join, group or sort its rows.

A query is parsed, every table it reads is renamed to a placeholder the caller's `relation_of`
maps to a mesh asset (`<domain>.<asset>`), and sqlglot's `qualify` ties each column reference to
the relation or sub-query it comes from. Stars are not expanded: a column asked for by name is
followed through `select *` to the one source that has it (schemas, where the caller knows them,
settle which source that is when several could), so the lineage of a column holds even where a
schema is not known. Each use carries OpenLineage's transformation type:

- DIRECT: IDENTITY (the value as it is), TRANSFORMATION (computed from it), AGGREGATION (an
  aggregate of it);
- INDIRECT: FILTER (`where`, `having`, `qualify`, an aggregate's `filter`), JOIN, GROUP_BY, SORT
  (`order by`, the ordering argument of `arg_max`), WINDOW (partition and order of a window),
  CONDITIONAL (a `case`/`if` condition).

Across sub-queries the types compose: an indirect step makes the use indirect; direct steps keep
the strongest of identity < transformation < aggregation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

DIRECT, INDIRECT = "DIRECT", "INDIRECT"
IDENTITY, TRANSFORMATION, AGGREGATION = "IDENTITY", "TRANSFORMATION", "AGGREGATION"
FILTER, JOIN, GROUP_BY, SORT, WINDOW, CONDITIONAL = "FILTER", "JOIN", "GROUP_BY", "SORT", "WINDOW", "CONDITIONAL"
_DIRECT_RANK = {IDENTITY: 0, TRANSFORMATION: 1, AGGREGATION: 2}
_PLACEHOLDER = "__mesh_relation_"


class NotAnalysable(Exception):
    """The SQL cannot be read as one query (a parse error, or not a SELECT)."""


@dataclass(frozen=True, order=True)
class Use:
    """A column of a relation the query reads, and how the query uses it."""

    relation: str  # `<domain>.<asset>`
    column: str
    kind: str = DIRECT
    subtype: str = IDENTITY

    def through(self, outer: tuple[str, str]) -> Use:
        """This use as seen through an outer step of kind `outer` (kind, subtype)."""
        kind, subtype = outer
        if kind == INDIRECT:
            return Use(self.relation, self.column, INDIRECT, subtype)
        if self.kind == INDIRECT:
            return self
        strongest = max(subtype, self.subtype, key=_DIRECT_RANK.__getitem__)
        return Use(self.relation, self.column, DIRECT, strongest)


def _role(column: exp.Column, root: exp.Expression) -> tuple[str, str]:
    """How the expression `root` (one selected value) uses `column`, which it contains."""
    node: exp.Expression = column
    aggregated = False
    while node is not root and node.parent is not None:
        parent, key = node.parent, node.arg_key
        if isinstance(parent, exp.Filter) and key == "expression":
            return INDIRECT, FILTER
        if isinstance(parent, exp.Window) and key in ("partition_by", "order"):
            return INDIRECT, WINDOW
        if (isinstance(parent, exp.If) and key == "this") or (isinstance(parent, exp.Case) and key == "this"):
            return INDIRECT, CONDITIONAL
        if isinstance(parent, exp.ArgMax | exp.ArgMin) and key == "expression":
            return INDIRECT, SORT
        if isinstance(parent, exp.Order) and key == "expressions":
            return INDIRECT, WINDOW if isinstance(parent.parent, exp.Window) else SORT
        if isinstance(parent, exp.Where | exp.Having | exp.Join):
            return INDIRECT, FILTER
        if isinstance(parent, exp.AggFunc):
            aggregated = True
        node = parent
    if column is root:
        return DIRECT, IDENTITY
    return DIRECT, AGGREGATION if aggregated else TRANSFORMATION


def _is_star(select: exp.Expression) -> bool:
    return isinstance(select, exp.Star) or (isinstance(select, exp.Column) and isinstance(select.this, exp.Star))


def _star_excludes(select: exp.Expression) -> set[str]:
    star = select if isinstance(select, exp.Star) else select.this
    return {c.name for c in star.args.get("except_") or star.args.get("except") or []}


class QueryColumns:
    """The column lineage of one query. `relation_of` names the mesh asset a table of the query is
    (None: not a mesh asset, such as a file the query reads); `schemas` gives the columns of the
    assets whose columns are known, by asset."""

    def __init__(
        self,
        sql: str,
        relation_of: Callable[[exp.Table], str | None],
        schemas: Mapping[str, Collection[str]] | None = None,
        dialect: str = "duckdb",
    ):
        try:
            tree = sqlglot.parse_one(sql, read=dialect)
        except SqlglotError as exc:
            raise NotAnalysable(f"the SQL does not parse: {str(exc).splitlines()[0]}") from exc
        if not isinstance(tree, exp.Query):
            raise NotAnalysable(f"not a query but {tree.key.upper()}")
        self.relations: dict[str, str | None] = {}  # placeholder -> asset
        schema = self._name_relations(tree, relation_of, schemas or {})
        try:
            tree = qualify(
                tree,
                dialect=dialect,
                schema=schema,
                expand_stars=False,
                validate_qualify_columns=False,
                quote_identifiers=False,
                identify=False,
            )
            root = build_scope(tree)
        except SqlglotError as exc:
            raise NotAnalysable(f"sqlglot cannot resolve its columns: {str(exc).splitlines()[0]}") from exc
        if root is None:
            raise NotAnalysable("no query scope")
        self.root = root
        self.schemas = {k: set(v) for k, v in (schemas or {}).items()}
        self._scopes = {id(s.expression): s for s in root.traverse()}
        self._memo: dict[tuple[int, str], list[Use]] = {}
        self._visiting: set[tuple[int, str]] = set()
        self.unresolved: set[str] = set()  # column references no source provides

    def _name_relations(
        self,
        tree: exp.Expression,
        relation_of: Callable[[exp.Table], str | None],
        schemas: Mapping[str, Collection[str]],
    ) -> dict[str, dict[str, str]]:
        """Rename every table read to a placeholder (keeping what the query calls it), so that the
        schema handed to sqlglot is flat whatever the catalog and schema of each name."""
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        schema: dict[str, dict[str, str]] = {}
        for i, table in enumerate(list(tree.find_all(exp.Table))):
            if not isinstance(table.this, exp.Identifier):
                continue  # a table function (read_parquet(...)): not a mesh asset
            if not table.db and not table.catalog and table.name in ctes:
                continue
            placeholder = f"{_PLACEHOLDER}{i}"
            asset = relation_of(table)
            self.relations[placeholder] = asset
            alias = table.alias or table.name
            table.replace(exp.table_(placeholder, alias=exp.to_identifier(alias)))
            if asset is not None and asset in schemas:
                schema[placeholder] = {c: "text" for c in schemas[asset]}
        return schema

    # -- what the query outputs ----------------------------------------------------------------

    def outputs(self) -> list[str] | None:
        """The query's column names, or None where a star of an unknown schema leaves them open."""
        return self._names(self.root)

    def _selects(self, scope: Scope) -> list[exp.Expression]:
        expression = scope.expression
        while isinstance(expression, exp.SetOperation):
            expression = expression.left
        return list(expression.selects) if isinstance(expression, exp.Select) else []

    def _names(self, scope: Scope) -> list[str] | None:
        selects = self._selects(scope)
        if any(_is_star(s) for s in selects):
            return None
        return [s.alias_or_name for s in selects]

    def column(self, name: str) -> list[Use] | None:
        """What output column `name` is made from (None: the query has no such column)."""
        if self._provides(self.root, name) is False:
            return None
        return sorted(set(self._resolve_name(self.root, name)))

    # -- resolution ----------------------------------------------------------------------------

    def _resolve_name(self, scope: Scope, name: str) -> list[Use]:
        key = (id(scope), name)
        if key in self._memo:
            return self._memo[key]
        if key in self._visiting:  # a recursive CTE: its own rows add no new sources
            return []
        self._visiting.add(key)
        try:
            found = self._resolve_name_uncached(scope, name)
        finally:
            self._visiting.discard(key)
        self._memo[key] = found
        return found

    def _resolve_name_uncached(self, scope: Scope, name: str) -> list[Use]:
        if isinstance(scope.expression, exp.SetOperation):
            names = self._names(scope)
            index = names.index(name) if names and name in names else None
            found: list[Use] = []
            for branch in scope.set_operation_scopes:
                found += (
                    self._resolve_position(branch, index) if index is not None else self._resolve_name(branch, name)
                )
            return found
        selects = self._selects(scope)
        named = next((s for s in selects if not _is_star(s) and s.alias_or_name == name), None)
        if named is not None:
            return self._value_uses(scope, named)
        found = []
        for star in (s for s in selects if _is_star(s)):
            if name in _star_excludes(star):
                continue
            for source in self._star_sources(scope, star, name):
                found += self._from_source(source, name)
        return found

    def _resolve_position(self, scope: Scope, index: int) -> list[Use]:
        if isinstance(scope.expression, exp.SetOperation):
            return [u for branch in scope.set_operation_scopes for u in self._resolve_position(branch, index)]
        selects = self._selects(scope)
        if index < len(selects) and not any(_is_star(s) for s in selects[: index + 1]):
            return self._value_uses(scope, selects[index])
        names = self._names(scope)
        return self._resolve_name(scope, names[index]) if names and index < len(names) else []

    def _star_sources(self, scope: Scope, star: exp.Expression, name: str) -> list[exp.Table | Scope]:
        if isinstance(star, exp.Column) and star.table:
            source = scope.sources.get(star.table)
            return [source] if source is not None else []
        return self._candidates([source for _, source in scope.selected_sources.values()], name)

    def _candidates(self, sources: list[exp.Table | Scope], name: str) -> list[exp.Table | Scope]:
        """Of several sources, those that have column `name`: the ones known to have it, else the ones
        that may (schema unknown)."""
        if len(sources) <= 1:
            return sources
        known = [s for s in sources if self._provides(s, name)]
        return known or [s for s in sources if self._provides(s, name) is None]

    def _provides(self, source: exp.Table | Scope, name: str) -> bool | None:
        """Whether `source` has column `name`: True, False, or None (not known)."""
        if isinstance(source, exp.Table):
            asset = self.relations.get(source.name)
            if asset is None or asset not in self.schemas:
                return None
            return name in self.schemas[asset]
        selects = self._selects(source)
        if any(not _is_star(s) and s.alias_or_name == name for s in selects):
            return True
        answers = []
        for star in (s for s in selects if _is_star(s)):
            if name in _star_excludes(star):
                continue
            if isinstance(star, exp.Column) and star.table:
                inner = source.sources.get(star.table)
                answers.append(self._provides(inner, name) if inner is not None else None)
            else:
                answers += [self._provides(s, name) for _, s in source.selected_sources.values()]
        if any(answers):
            return True
        return None if None in answers else False

    def _from_source(self, source: exp.Table | Scope, name: str) -> list[Use]:
        if isinstance(source, Scope):
            return self._resolve_name(source, name)
        asset = self.relations.get(source.name)
        return [Use(asset, name)] if asset is not None else []

    def _scope_of(self, node: exp.Expression, default: Scope) -> Scope:
        query = node.find_ancestor(exp.Select, exp.SetOperation)
        return self._scopes.get(id(query), default) if query is not None else default

    def _resolve_column(self, scope: Scope, column: exp.Column) -> list[Use]:
        if column.table:
            current: Scope | None = scope
            while current is not None:  # a correlated sub-query names an outer query's source
                source = current.sources.get(column.table)
                if source is not None:
                    return self._from_source(source, column.name)
                current = current.parent
            self.unresolved.add(column.sql())
            return []
        sources = self._candidates([source for _, source in scope.selected_sources.values()], column.name)
        found = [u for source in sources for u in self._from_source(source, column.name)]
        if not sources:
            self.unresolved.add(column.sql())
        return found

    def _value_uses(self, scope: Scope, select: exp.Expression) -> list[Use]:
        value = select.this if isinstance(select, exp.Alias) else select
        found = []
        for column in value.find_all(exp.Column):
            if isinstance(column.this, exp.Star):
                continue
            role = _role(column, value)
            found += [u.through(role) for u in self._resolve_column(self._scope_of(column, scope), column)]
        return found

    # -- what the query uses for its rows ------------------------------------------------------

    def dataset(self) -> list[Use]:
        """Columns the query filters, joins, groups or sorts on (indirect uses of the whole output)."""
        found: set[Use] = set()
        for scope in self.root.traverse():
            select = scope.expression
            if not isinstance(select, exp.Select):
                continue
            clauses: list[tuple[exp.Expression | None, str]] = [
                (select.args.get("where"), FILTER),
                (select.args.get("having"), FILTER),
                (select.args.get("qualify"), FILTER),
                (select.args.get("order"), SORT),
            ]
            clauses += [(join.args.get("on"), JOIN) for join in select.args.get("joins") or []]
            group = select.args.get("group")
            if group is not None:
                clauses.append((group, GROUP_BY))
                if group.args.get("all"):  # group by all: every selected value that is not an aggregate
                    clauses += [(s, GROUP_BY) for s in select.selects if not s.find(exp.AggFunc) and not _is_star(s)]
            if scope.is_subquery:  # `where x in (select y ...)`: what the sub-query selects filters the rows
                clauses += [(s, FILTER) for s in select.selects]
            for clause, subtype in clauses:
                found |= set(self._clause_uses(scope, clause, subtype))
        return sorted(found)

    def _clause_uses(self, scope: Scope, clause: exp.Expression | None, subtype: str) -> Iterable[Use]:
        if clause is None:
            return []
        found = []
        for column in clause.find_all(exp.Column):
            if isinstance(column.this, exp.Star) or self._scope_of(column, scope) is not scope:
                continue  # a nested sub-query's columns are its own scope's
            found += [u.through((INDIRECT, subtype)) for u in self._resolve_column(scope, column)]
        return found
