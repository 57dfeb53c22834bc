"""`mesh new-domain`: a descriptor, code, a test and (for dbt) a dbt project that run green."""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from mesh_platform.descriptor.load import DESCRIPTOR_FILE
from mesh_platform.descriptor.model import OWNER_PATTERN, PRODUCT_REF_PATTERN, Descriptor
from mesh_platform.descriptor.rules import product_rules
from mesh_platform.project.mesh import Mesh
from mesh_platform.project.workspace_file import WORKSPACE, with_location
from mesh_platform.scaffold.apply import Scaffolded, ScaffoldError, apply
from mesh_platform.scaffold.content import ExampleProduct, ProductContent
from mesh_platform.scaffold.name_rules import InvalidName, check_name
from mesh_platform.scaffold.plan import FilePlan
from mesh_platform.scaffold.render import render, yaml_scalar
from mesh_platform.text import one_line

KINDS = ("python", "dbt")


def _check_consumes(mesh: Mesh, domain: str, consumes: list[str]) -> list[str]:
    """Notes for consumed products that do not grant `domain` yet (validate names the line to change)."""
    import re

    notes = []
    for ref in consumes:
        if not re.match(PRODUCT_REF_PATTERN, ref):
            raise ScaffoldError(f"--consumes {ref!r} is not DOMAIN.PRODUCT (e.g. pharmacy.sites)")
        if consumes.count(ref) > 1:
            raise ScaffoldError(f"--consumes {ref} is given twice")
        try:
            producer, product = mesh.product(ref)
        except KeyError as exc:
            raise ScaffoldError(f"--consumes {str(exc).strip(chr(34))}") from exc
        if not product.access.grants(domain):
            index = producer.products.index(product)
            notes.append(
                f"{ref} does not grant {domain!r} yet: ask {producer.owner} to add {domain!r} to "
                f"products[{index}].access.consumers in {mesh.files[producer.domain]} "
                "(`mesh validate` reports it until then)"
            )
    return notes


def _workspace_with(mesh: Mesh, domain: str) -> str:
    path = mesh.project.root / WORKSPACE
    if not path.exists():
        raise ScaffoldError(f"{WORKSPACE} not found in {mesh.project.root}: it lists one code location per domain")
    try:
        return with_location(path.read_text(), domain)
    except ValueError as exc:
        raise ScaffoldError(f"{WORKSPACE} {exc}") from exc


def _business_process(mesh: Mesh) -> str:
    processes = Counter(d.business_process for d in mesh.descriptors.values())
    return processes.most_common(1)[0][0] if processes else "business-process"


def plan_new_domain(
    mesh: Mesh,
    name: str,
    owner: str,
    consumes: list[str],
    kind: str,
    product: str,
    business_process: str | None = None,
    description: str | None = None,
    content: ProductContent | None = None,
) -> tuple[FilePlan, list[str]]:
    """Check everything and render every file in memory; raise ScaffoldError before anything is written.
    `content`: the product's entry and code (default: the example product, built from `consumes`)."""
    root = mesh.project.root
    try:
        check_name(name, "domain")
        check_name(product, "product")
    except InvalidName as exc:
        raise ScaffoldError(str(exc)) from exc
    if kind not in KINDS:
        raise ScaffoldError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for folder in (mesh.project.domain_dir(name), mesh.project.dbt_dir / name):
        if folder.exists():
            raise ScaffoldError(f"{mesh.project.rel(folder)} already exists: domain {name!r} is taken")
    if not OWNER_PATTERN.match(owner):
        raise ScaffoldError(f"--owner {owner!r} is not a Dagster owner: use 'team:<name>' or an email address")
    notes = _check_consumes(mesh, name, consumes)
    business_process = one_line(business_process or _business_process(mesh))
    description = one_line(description or f"The {name} domain, scaffolded by mesh new-domain: say what it is for.")
    if not business_process or not description:
        raise ScaffoldError("--business-process and --description must not be empty")

    example = content or ExampleProduct(name, product, tuple(consumes))
    consumes_block = "consumes:\n" + "".join(f"  - {ref}\n" for ref in consumes) if consumes else ""
    descriptor_text = render(
        "domain/domain.yaml",
        domain=name,
        owner=yaml_scalar(owner),
        business_process=yaml_scalar(business_process),
        description=description,
        consumes=consumes_block,
        products=example.descriptor_entry().rstrip("\n"),
    )
    descriptor = Descriptor.model_validate(yaml.safe_load(descriptor_text))
    rel = f"domains/{name}/{DESCRIPTOR_FILE}"
    assert descriptor.domain == name, "scaffold template is inconsistent"
    problems = product_rules(descriptor, rel)
    if problems:
        raise ScaffoldError(f"{product} would break {rel}: {problems[0]}")

    domain_dir = mesh.project.domain_dir(name)
    plan = FilePlan(root)
    plan.write(domain_dir / DESCRIPTOR_FILE, descriptor_text)
    plan.write(domain_dir / "definitions.py", render("domain/definitions.py", domain=name))
    test = render("domain/test_domain.py", domain=name, product=product, product_test=example.domain_test())
    plan.write(domain_dir / f"test_{name}.py", test)
    if kind == "python":
        assets = render("python/assets.py", domain=name) + "\n\n" + example.python_function()
        plan.write(domain_dir / "assets.py", assets)
    else:
        dbt_dir = mesh.project.dbt_dir / name
        plan.write(dbt_dir / "dbt_project.yml", render("dbt/dbt_project.yml", domain=name))
        if consumes:
            plan.write(dbt_dir / "models" / "marts" / "_sources.yml", dbt_sources(consumes))
        sql, properties = example.dbt_model()
        plan.write(dbt_dir / "models" / "marts" / f"{product}.sql", sql)
        plan.write(dbt_dir / "models" / "marts" / f"{product}.yml", properties)
    plan.write(root / WORKSPACE, _workspace_with(mesh, name))
    for path, text in plan.files.items():
        if path.suffix == ".py":
            compile(text, str(path), "exec")
    return plan, notes


def dbt_sources(consumes: list[str]) -> str:
    """dbt sources for consumed products: source('<domain>', '<product>') reads the governed view."""
    by_producer: dict[str, list[str]] = {}
    for ref in consumes:
        producer, product = ref.split(".", 1)
        by_producer.setdefault(producer, []).append(product)
    blocks = [
        render(
            "dbt/source.yml",
            producer=producer,
            tables="".join(f"      - name: {p}\n        description: {producer}.{p}\n" for p in products).rstrip("\n"),
        ).rstrip("\n")
        for producer, products in by_producer.items()
    ]
    return render("dbt/sources.yml", sources="\n".join(blocks))


def new_domain(
    mesh: Mesh, name: str, owner: str, consumes: list[str], kind: str, product: str, **options: Any
) -> Scaffolded:
    """`plan_new_domain`'s plan, written (its keyword options: business_process, description, content)."""
    plan, notes = plan_new_domain(mesh, name, owner, consumes, kind, product, **options)
    return apply(mesh, plan, name if kind == "dbt" else None, notes)
