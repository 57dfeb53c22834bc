"""The example product a scaffold writes: its descriptor entry, its Python function or dbt model.

Built from what the domain consumes (one row per consumed product with its row count, read through
the governed read), or, when it consumes nothing, from a tiny self-contained source (inline VALUES).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from mesh_platform.scaffold.render import render


class ProductContent(Protocol):
    """What a scaffold writes for a product: its descriptor entry and the code that builds it."""

    def descriptor_entry(self) -> str: ...

    def python_function(self) -> str: ...

    def dbt_model(self) -> tuple[str, str]: ...

    def domain_test(self) -> str: ...


WITH_THE_DOMAIN = "scaffolded with the domain"  # mesh new-domain
BY_NEW_PRODUCT = "added by mesh new-product"  # a product added to a domain that exists


@dataclass(frozen=True)
class ExampleProduct:
    domain: str
    name: str
    reads: tuple[str, ...]  # consumed products it is built from; empty: the inline source
    origin: str = WITH_THE_DOMAIN  # how it came to be, in its descriptor's `value`

    @property
    def variant(self) -> str:
        return "from_consumes" if self.reads else "inline"

    def descriptor_entry(self) -> str:
        """The product's block under `products:` in domain.yaml."""
        return render(
            f"domain/product_{self.variant}.yaml",
            name=self.name,
            domain=self.domain,
            count=len(self.reads),
            origin=self.origin,
        )

    def python_function(self) -> str:
        if not self.reads:
            return render("python/product_inline.py", name=self.name)
        selects = "\n        union all\n".join(
            f"        select '{ref}' as source_product, count(*) as row_count\n"
            f"        from {{ctx.read({json.dumps(ref)})}}"
            for ref in self.reads
        )
        return render(
            "python/product_from_consumes.py",
            decorator=_decorator(self.name, list(self.reads)),
            name=self.name,
            selects=selects,
        )

    def domain_test(self) -> str:
        """The fast test of the example product, for the domain's `test_<domain>.py`."""
        if not self.reads:
            return "\n\n" + render("domain/test_product_inline.py").rstrip("\n")
        counts = {ref: 3 + 2 * i for i, ref in enumerate(self.reads)}  # distinct: a swapped count shows
        entries = [f"{json.dumps(ref)}: {count}" for ref, count in counts.items()]
        flat = ", ".join(entries)
        rows = flat if len(flat) <= 90 else "\n" + "".join(f"    {e},\n" for e in entries)
        return "\n\n" + render("domain/test_product_from_consumes.py", consumed_rows=rows).rstrip("\n")

    def dbt_model(self) -> tuple[str, str]:
        """(SQL, properties YAML) of the dbt model."""
        if not self.reads:
            return render("dbt/model_inline.sql"), render("dbt/model_inline.yml", name=self.name)
        selects = "\nunion all\n".join(
            f"select '{ref}' as source_product, count(*) as row_count\n"
            f"from {{{{ source('{ref.split('.')[0]}', '{ref.split('.')[1]}') }}}}"
            for ref in self.reads
        )
        return (
            render("dbt/model_from_consumes.sql", selects=selects),
            render("dbt/model_from_consumes.yml", name=self.name),
        )


def _decorator(name: str, reads: list[str]) -> str:
    """`@product(name, reads=[...])` laid out as `ruff format` lays it out."""
    items = ", ".join(json.dumps(r) for r in reads)
    flat = f'@product("{name}", reads=[{items}])'
    if len(flat) <= 120:
        return flat
    args = f'"{name}", reads=[{items}]'
    if len(args) + 4 <= 120:
        return f"@product(\n    {args}\n)"
    reads_line = f"    reads=[{items}],"
    if len(reads_line) > 120:
        reads_line = "    reads=[\n" + "".join(f"        {json.dumps(r)},\n" for r in reads) + "    ],"
    return f'@product(\n    "{name}",\n{reads_line}\n)'
