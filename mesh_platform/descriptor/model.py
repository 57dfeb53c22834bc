"""The data-product descriptor (`domains/<domain>/domain.yaml`) as pydantic models.

The JSON Schema exported from `Descriptor` (see `mesh_platform.descriptor.schema`) is the
published contract of the file format; everything here is validated per file, the cross-domain
rules live in `mesh_platform.descriptor.rules`.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mesh_platform.descriptor.expectations import EXPECTATION_TYPES
from mesh_platform.descriptor.reserved_words import reserved_by
from mesh_platform.governance.masking import MaskPolicy, column_policy

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)]


def _not_reserved(value: str) -> str:
    engines = reserved_by(value)
    if engines:
        raise PydanticCustomError(
            "name_not_reserved",
            "{name} is a reserved SQL keyword in {engines}: choose another name (e.g. {example})",
            {"name": repr(value), "engines": " and ".join(engines), "example": repr(f"{value}_name")},
        )
    return value


# a name that becomes an SQL identifier: a domain, product or column
SqlName = Annotated[Name, AfterValidator(_not_reserved)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OWNER_PATTERN = re.compile(r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")
DURATION_PATTERN = re.compile(r"^(\d+)([mhd])$")
DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400}
MAX_FRESHNESS_S = 366 * 86400
MAX_RETENTION_S = 3660 * 86400  # ten years
PRODUCT_REF_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
# a consumed product, optionally pinned to a major: `patients.patient_accounts@1`
CONSUME_REF_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*(@(0|[1-9][0-9]{0,5}))?$"
COLUMN_REF_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
VERSION_PATTERN = r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$"
ColumnType = Literal["string", "integer", "bigint", "double", "boolean", "date", "timestamp"]
Classification = Literal["public", "internal", "pii"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_owner(value: str) -> str:
    if not OWNER_PATTERN.match(value):
        raise ValueError("an owner is a Dagster owner: 'team:<name>' or an email address")
    return value


class Column(_Strict):
    name: SqlName
    type: ColumnType
    description: Text
    classification: Classification = "internal"
    mask: MaskPolicy | None = Field(
        default=None,
        description="masking policy applied on read for consumers without PII access "
        "(pii columns only; default 'token')",
    )
    derived_from: list[Annotated[str, StringConstraints(pattern=COLUMN_REF_PATTERN)]] | None = Field(
        default=None,
        description="the columns this one is made from ('<domain>.<asset>.<column>'), declared only where the "
        "platform cannot read them from the code (shown as declared wherever lineage is shown)",
    )

    @model_validator(mode="after")
    def _mask_only_for_pii(self) -> Column:
        if self.mask is not None and self.classification != "pii":
            raise ValueError(f"column {self.name!r}: 'mask' applies to pii columns only")
        return self

    @property
    def mask_policy(self) -> MaskPolicy | None:
        return column_policy(self.classification, self.mask)


COLUMN_KWARGS = ("column", "column_A", "column_B")
SET_VALUES = (str, int, float, date, type(None))  # what a `value_set` holds (bool is an int; datetime a date)


# GX's own grammar for a row condition given as text (`col("state") == "NY"`); the pandas and Spark
# parsers' conditions cannot run in SQL, where the checks run
GX_CONDITION_PARSERS = ("great_expectations", "great_expectations__experimental__")


def condition_columns(condition: object) -> list[str]:
    """The columns a row condition filters on: `col("x")` in GX's text form, `column` (`{name: x}`) in
    its structured form, nested under `conditions` for `and` / `or`."""
    if isinstance(condition, str):
        return re.findall(r'col\("([^"]*)"\)', condition)
    if isinstance(condition, list):
        return [name for item in condition for name in condition_columns(item)]
    if not isinstance(condition, dict):
        return []
    column = condition.get("column")
    if isinstance(column, dict):
        column = column.get("name")
    return ([column] if isinstance(column, str) else []) + condition_columns(condition.get("conditions"))


def _set_value(value: object) -> bool:
    """A value a `value_set` may hold: text, a finite number, a boolean, a date, or null."""
    return isinstance(value, SET_VALUES) and not (isinstance(value, float) and not math.isfinite(value))


class Expectation(_Strict):
    type: str = Field(description="a Great Expectations 1.x expectation type, e.g. expect_column_values_to_not_be_null")
    kwargs: dict[str, object] = Field(default_factory=dict)
    severity: Literal["error", "warn"] = "error"

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in EXPECTATION_TYPES:
            raise ValueError(f"unknown expectation type {value!r} (not a Great Expectations 1.x core expectation)")
        return value

    @field_validator("kwargs")
    @classmethod
    def _column_kwargs(cls, value: dict[str, object]) -> dict[str, object]:
        """The kwargs that name columns name them with strings (the checks and rules read them)."""
        for key in COLUMN_KWARGS:
            if key in value and not isinstance(value[key], str):
                raise PydanticCustomError(
                    "expectation_kwargs",
                    "{key} must be a column name, got {got}",
                    {"key": key, "got": repr(value[key])[:80]},
                )
        names = value.get("column_list")
        if "column_list" in value and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise PydanticCustomError("expectation_kwargs", "column_list must be a list of column names")
        values = value.get("value_set")
        if "value_set" in value and not (isinstance(values, list) and all(map(_set_value, values))):
            raise PydanticCustomError(
                "expectation_kwargs",
                "value_set must be a list of values (text, numbers, booleans, dates), got {got}",
                {"got": repr(values)[:80]},
            )
        return value

    @property
    def columns(self) -> list[str]:
        """Columns this expectation names (column, column_A/B, column_list)."""
        names = [self.kwargs.get(k) for k in COLUMN_KWARGS]
        names += list(self.kwargs.get("column_list") or [])  # type: ignore[call-overload]
        return [str(n) for n in names if n is not None]

    @property
    def condition_columns(self) -> list[str]:
        """Columns its row condition filters on."""
        return condition_columns(self.kwargs.get("row_condition"))

    @property
    def row_condition_problem(self) -> str | None:
        """Why its row condition could only fail in SQL, or None: text needs GX's own parser."""
        if not isinstance(self.kwargs.get("row_condition"), str):
            return None
        parser = self.kwargs.get("condition_parser")
        if parser in GX_CONDITION_PARSERS:
            return None
        return (
            f'a row_condition as text needs condition_parser: great_expectations (col("x") == ...), not {parser!r}: '
            "the checks run in SQL, where pandas and Spark conditions cannot"
        )

    @property
    def check_name(self) -> str:
        short = self.type.removeprefix("expect_")
        cols = "_".join(self.columns)
        return re.sub(r"[^a-z0-9_]", "_", f"{short}__{cols}" if cols else short)[:120]


class Access(_Strict):
    consumers: list[Annotated[str, StringConstraints(pattern=r"^(\*|[a-z][a-z0-9_]*)$")]] = Field(
        default_factory=list, description="domains that may consume this product, or ['*']"
    )
    pii_readers: list[Name] = Field(
        default_factory=list, description="domains that may see pii columns unmasked (the owner always may)"
    )

    def grants(self, domain: str) -> bool:
        return "*" in self.consumers or domain in self.consumers


def duration_seconds(value: str | None) -> int | None:
    """Seconds of a duration like '30m', '26h' or '2d' (None for None)."""
    match = DURATION_PATTERN.match(value) if value is not None else None
    return int(match.group(1)) * DURATION_UNITS[match.group(2)] if match else None


def _duration(key: str, value: str | None, max_seconds: int, max_text: str) -> str | None:
    if value is None:
        return None
    seconds = duration_seconds(value)
    if seconds is None:
        raise ValueError(f"{key} is a duration like '30m', '26h' or '2d'")
    if not 0 < seconds <= max_seconds:
        raise ValueError(f"{key} is from 1m to {max_text}")
    return value


class Product(_Strict):
    name: SqlName
    description: Text
    value: Text = Field(description="why the product exists: the decision it serves")
    owner: str | None = Field(default=None, description="defaults to the domain owner")
    columns: list[Column] = Field(min_length=1)
    expectations: list[Expectation] = Field(default_factory=list)
    freshness: str | None = Field(default=None, description="maximum lag, e.g. '26h', '30m', '2d'")
    retention: str | None = Field(
        default=None,
        description="how long published versions stay readable (`mesh read --at`), e.g. '30d'; without it the "
        "last 5 are kept. The current version is never pruned",
    )
    access: Access = Field(default_factory=Access)
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)] | None = Field(
        default=None, description="'MAJOR.MINOR' (quoted in YAML); a breaking change needs a new major"
    )
    sunset: date | None = Field(
        default=None,
        description="an older major only: the date (YYYY-MM-DD) after which it is no longer built; consumers "
        "still pinned to it are warned until then",
    )
    _major_of: str | None = PrivateAttr(default=None)  # set on an older major: the product it is a major of

    _check_owner = field_validator("owner")(lambda cls, v: v if v is None else _check_owner(v))

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise PydanticCustomError(
                "version_format",
                "version is 'MAJOR.MINOR' in quotes, e.g. version: \"{hint}\" (unquoted, YAML reads 1.10 as the "
                "number 1.1)",
                {"hint": f"{value:.1f}" if isinstance(value, float) else f"{value}.0"},
            )
        return value

    @property
    def major(self) -> int | None:
        return int(self.version.split(".")[0]) if self.version else None

    @property
    def family(self) -> str:
        """The product's name as declared and read by consumers (an older major is stored and built as
        `<family>_v<major>`, see `Descriptor._side_by_side_majors`)."""
        return self._major_of or self.name

    @property
    def is_older_major(self) -> bool:
        return self._major_of is not None

    @property
    def pinned_ref(self) -> str:
        """`<family>@<major>` for an older major, else the name: how it is shown."""
        return f"{self.family}@{self.major}" if self._major_of else self.name

    def sunset_passed(self, today: date | None = None) -> bool:
        return self.sunset is not None and (today or date.today()) > self.sunset

    @field_validator("sunset", mode="before")
    @classmethod
    def _sunset_date(cls, value: object) -> object:
        if value is None or isinstance(value, date):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise PydanticCustomError(
            "sunset_format", "sunset is a date YYYY-MM-DD, e.g. sunset: 2027-06-30, got {got}", {"got": repr(value)}
        )

    @field_validator("freshness")
    @classmethod
    def _freshness(cls, value: str | None) -> str | None:
        return _duration("freshness", value, MAX_FRESHNESS_S, "366d")

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str | None) -> str | None:
        return _duration("retention", value, MAX_RETENTION_S, "3660d")

    @model_validator(mode="after")
    def _unique_columns(self) -> Product:
        seen: set[str] = set()
        for column in self.columns:
            if column.name in seen:
                raise ValueError(f"column {column.name!r} is declared twice")
            seen.add(column.name)
        return self

    @property
    def freshness_seconds(self) -> int | None:
        return duration_seconds(self.freshness)

    @property
    def retention_seconds(self) -> int | None:
        return duration_seconds(self.retention)

    def named_expectations(self) -> list[tuple[str, Expectation]]:
        """Each expectation with its asset-check name, unique within the product (`__2` on repeats)."""
        seen: dict[str, int] = {}
        named = []
        for expectation in self.expectations:
            base = expectation.check_name
            seen[base] = seen.get(base, 0) + 1
            named.append((base if seen[base] == 1 else f"{base}__{seen[base]}", expectation))
        return named

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


class CodeException(_Strict):
    """Direct access a domain's Python code is allowed to have, declared for review
    (`mesh_platform.governance.code_scan` refuses undeclared ones)."""

    file: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$")] = Field(
        description="the Python file, relative to the domain's folder (e.g. assets.py)"
    )
    uses: Text = Field(description="what it uses, as `mesh validate` names it (e.g. open, duckdb)")
    reason: Text = Field(description="why the domain needs it")


class Descriptor(_Strict):
    """One domain's `domain.yaml`."""

    domain: SqlName
    owner: str
    business_process: Text
    description: Text
    products: list[Product] = Field(default_factory=list)
    consumes: list[Annotated[str, StringConstraints(pattern=CONSUME_REF_PATTERN)]] = Field(
        default_factory=list,
        description="other domains' products this domain reads: '<domain>.<product>' (the latest major), or "
        "'<domain>.<product>@<major>' pinned to a major",
    )
    schedule: str | None = Field(default=None, description="cron schedule for the domain's own job")
    code_exceptions: list[CodeException] = Field(
        default_factory=list,
        description="direct file, database or platform access the domain's Python code has outside ctx, "
        "each declared with a reason (the platform refuses to load undeclared ones)",
    )

    _check_owner = field_validator("owner")(lambda cls, v: _check_owner(v))

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError("schedule is a five-field cron expression, e.g. '0 6 * * *'")
        return value

    @field_validator("products")
    @classmethod
    def _side_by_side_majors(cls, products: list[Product]) -> list[Product]:
        """Two entries of one product name are two majors published side by side: the latest keeps the
        name, an older one is built, stored and keyed as `<name>_v<major>`."""
        named: dict[str, list[Product]] = {}
        for product in products:
            named.setdefault(product.name, []).append(product)
        renamed = {}
        for name, entries in named.items():
            if len(entries) == 1:
                if entries[0].sunset is not None:
                    raise ValueError(
                        f"product {name!r}: sunset applies to an older major, published next to a newer one"
                    )
                continue
            majors = [p.major for p in entries]
            if None in majors or len(set(majors)) != len(majors):
                raise ValueError(
                    f"product {name!r} is declared twice; two entries of one product are two majors published side "
                    "by side, each with a version of a different MAJOR"
                )
            latest = max(m for m in majors if m is not None)
            for product in entries:
                if product.major == latest and product.sunset is not None:
                    raise ValueError(f"product {name!r}: sunset applies to an older major, not the latest ({latest})")
                if product.major != latest:
                    older = product.model_copy(update={"name": f"{name}_v{product.major}"})
                    older._major_of = name
                    renamed[id(product)] = older
        result = [renamed.get(id(p), p) for p in products]
        names = [p.name for p in result]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"product {name!r} is declared twice (an older major of another product has its name)")
        return result

    @field_validator("consumes")
    @classmethod
    def _one_major_each(cls, refs: list[str]) -> list[str]:
        products = [ref.partition("@")[0] for ref in refs]
        for ref in products:
            if products.count(ref) > 1:
                raise ValueError(f"{ref} is listed twice: a domain consumes one major of a product")
        return refs

    def product(self, name: str) -> Product | None:
        return next((p for p in self.products if p.name == name), None)

    def owner_of(self, product: Product) -> str:
        return product.owner or self.owner

    @property
    def consumed_domains(self) -> set[str]:
        return {ref.split(".", 1)[0] for ref in self.consumes}

    @property
    def consumed_refs(self) -> list[str]:
        """`consumes` without the pins: the `<domain>.<product>` each names."""
        return [ref.partition("@")[0] for ref in self.consumes]

    def pinned_major(self, ref: str) -> int | None:
        """The major `ref` (`<domain>.<product>`) is pinned to in `consumes`, None when unpinned."""
        return next((int(c.partition("@")[2]) for c in self.consumes if c.partition("@")[0] == ref and "@" in c), None)

    def majors_of(self, name: str) -> list[Product]:
        """Every major of product `name` published side by side, the latest first."""
        return sorted((p for p in self.products if p.family == name), key=lambda p: -(p.major or 0))

    def built_name(self, name: str, major: int | None) -> str:
        """The asset that code for `major` of product `name` builds (`@product(name, major=N)`): the
        product itself when N is its latest major (or no major is given), else `<name>_v<N>`."""
        if major is None:
            return name
        found = next((p for p in self.majors_of(name) if p.major == major), None)
        return found.name if found else f"{name}_v{major}"
