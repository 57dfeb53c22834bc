"""`mesh new-product DOMAIN NAME`: a descriptor entry plus its @product function or dbt model."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from mesh_platform.descriptor.load import DESCRIPTOR_FILE
from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.rules import product_rules
from mesh_platform.project.mesh import Mesh
from mesh_platform.scaffold.apply import Scaffolded, ScaffoldError, apply
from mesh_platform.scaffold.content import BY_NEW_PRODUCT, ExampleProduct, ProductContent
from mesh_platform.scaffold.name_rules import InvalidName, check_name
from mesh_platform.scaffold.plan import FilePlan
from mesh_platform.scaffold.render import render

SDK = "mesh_platform.sdk"
SDK_NAMES = ("AssetContext", "product")
_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_PRODUCTS = re.compile(r"^products\s*:\s*(\[\s*\])?\s*(#.*)?$")


def _reindented(entry: str, indent: int) -> str:
    """`entry` (list items indented by two spaces, as the templates write them) at `indent` spaces."""
    if indent > 2:
        return "".join(" " * (indent - 2) + line if line.strip() else line for line in entry.splitlines(True))
    if indent < 2:
        return "".join(line[2 - indent :] for line in entry.splitlines(True))
    return entry


def with_product_entry(text: str, entry: str) -> str:
    """`text` (a domain.yaml) with `entry` appended to its `products:` list, comments and layout kept."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines) if _PRODUCTS.match(line.rstrip("\n"))), None)
    if start is None:
        return "".join(lines) + "products:\n" + entry
    if _PRODUCTS.match(lines[start].rstrip("\n")).group(1):  # type: ignore[union-attr]
        lines[start] = "products:\n"
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    items = [line for line in lines[start + 1 : end] if line.lstrip().startswith("- ")]
    indent = len(items[0]) - len(items[0].lstrip()) if items else 2
    return "".join(lines[:end]) + _reindented(entry, indent) + "".join(lines[end:])


def _end_line(node: yaml.Node) -> int:
    """The index of the line after the last line of `node`'s own content (comments after it excluded)."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _end_line(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _end_line(node.value[-1])
    return node.end_mark.line + (1 if node.end_mark.column else 0)


def with_product_replaced(text: str, name: str, entry: str) -> str:
    """`text` (a domain.yaml) with product `name`'s entry replaced by `entry`; every other line, comments
    included, kept as it was. Raises ValueError when the file does not list the product as a block item."""
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    products = None
    if isinstance(root, yaml.MappingNode):
        products = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "products"), None)
    if not isinstance(products, yaml.SequenceNode) or products.flow_style:
        raise ValueError("its products are not a block list")
    item = next(
        (
            node
            for node in products.value
            if isinstance(node, yaml.MappingNode)
            and any(
                isinstance(k, yaml.ScalarNode) and k.value == "name" and getattr(v, "value", None) == name
                for k, v in node.value
            )
        ),
        None,
    )
    if item is None or item.flow_style:
        raise ValueError(f"product {name!r} is not a block mapping in its products list")
    lines = text.splitlines(keepends=True)
    start, end = item.start_mark.line, _end_line(item)
    dash = lines[start].find("- ")
    if dash < 0 or lines[start][:dash].strip():
        raise ValueError(f"product {name!r} does not start its own line with '- '")
    return "".join(lines[:start]) + _reindented(entry, dash) + "".join(lines[end:])


def _import_line(names: list[str]) -> str:
    order = sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    return f"from {SDK} import {', '.join(order)}\n"


def with_python_product(text: str, function: str) -> str:
    """`text` (an assets.py) importing what the function needs from the SDK, with `function` appended."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    sdk = next((n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == SDK and n.level == 0), None)
    if sdk is not None:
        have = [a.name for a in sdk.names if a.asname is None]
        missing = [n for n in SDK_NAMES if n not in have]
        if missing:
            lines[sdk.lineno - 1 : sdk.end_lineno] = [_import_line(have + missing)]
    else:
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        docstring = ast.get_docstring(tree) is not None
        after = imports[-1].end_lineno if imports else (tree.body[0].end_lineno if docstring else 0)
        lines[after:after] = [("\n" if not imports and after else "") + _import_line(list(SDK_NAMES))]
    return "".join(lines).rstrip("\n") + "\n\n\n" + function


def _python_names(path: Path) -> set[str]:
    """Top-level names of an assets.py and the asset names its decorators give."""
    if not path.exists():
        return set()
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and deco.args and isinstance(deco.args[0], ast.Constant):
                    names.add(str(deco.args[0].value))
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _dbt_sources(project_dir: Path) -> set[str]:
    """`<source>.<table>` of every dbt source the project declares."""
    refs = set()
    for path in project_dir.joinpath("models").rglob("*.yml"):
        data = yaml.safe_load(path.read_text()) or {}
        for source in data.get("sources") or []:
            refs |= {f"{source['name']}.{t['name']}" for t in source.get("tables") or []}
    return refs


def plan_new_product(
    mesh: Mesh, domain: str, name: str, kind: str | None, content: ProductContent | None = None
) -> tuple[FilePlan, str | None]:
    """Check everything and render every change in memory; raise ScaffoldError before anything is written.
    `content`: the entry and code to write (default: the example product, built from what the domain
    consumes).

    Returns the plan and the domain whose dbt project must be re-parsed (None for Python)."""
    if domain not in mesh.project.domain_names():
        raise ScaffoldError(f"unknown domain {domain!r}; domains: {', '.join(mesh.project.domain_names())}")
    descriptor = mesh.descriptors.get(domain)
    problems = mesh.problems_for(domain)
    if descriptor is None or any(p.file == mesh.files[domain] for p in problems):
        detail = "; ".join(str(p) for p in problems[:3])
        raise ScaffoldError(f"{mesh.files[domain]} has problems; fix them first (`mesh validate`): {detail}")
    try:
        check_name(name, "product")
    except InvalidName as exc:
        raise ScaffoldError(str(exc)) from exc
    if descriptor.product(name) is not None:
        raise ScaffoldError(f"product {domain}.{name} already exists in {mesh.files[domain]}")
    dbt_dir = mesh.project.dbt_project_dir(domain)
    kind = kind or ("dbt" if dbt_dir is not None else "python")
    if kind not in ("python", "dbt"):
        raise ScaffoldError(f"--kind must be python or dbt, got {kind!r}")
    if kind == "dbt" and dbt_dir is None:
        raise ScaffoldError(f"domain {domain} has no dbt project (dbt_projects/{domain}); use --kind python")

    root, domain_dir = mesh.project.root, mesh.project.domain_dir(domain)
    plan = FilePlan(root)
    assets = domain_dir / "assets.py"
    if kind == "python":
        if name in _python_names(assets) | set(SDK_NAMES):
            raise ScaffoldError(f"{mesh.project.rel(assets)} already defines {name!r}")
        example = content or ExampleProduct(domain, name, tuple(descriptor.consumes), BY_NEW_PRODUCT)
        before = assets.read_text() if assets.exists() else render("python/assets.py", domain=domain)
        plan.write(assets, with_python_product(before, example.python_function()))
        compile(plan.files[assets], str(assets), "exec")
    else:
        assert dbt_dir is not None
        models = {p.stem for p in dbt_dir.joinpath("models").rglob("*.sql")}
        if name in models:
            raise ScaffoldError(f"dbt project {mesh.project.rel(dbt_dir)} already has a model named {name!r}")
        declared = _dbt_sources(dbt_dir)
        reads = tuple(r for r in descriptor.consumes if r in declared)
        example = content or ExampleProduct(domain, name, reads, BY_NEW_PRODUCT)
        marts = dbt_dir / "models" / "marts"
        folder = marts if marts.is_dir() else dbt_dir / "models"
        sql, properties = example.dbt_model()
        plan.write(folder / f"{name}.sql", sql)
        plan.write(folder / f"{name}.yml", properties)

    path = domain_dir / DESCRIPTOR_FILE
    new_text = with_product_entry(path.read_text(), example.descriptor_entry())
    try:
        updated = Descriptor.model_validate(yaml.safe_load(new_text))
    except ValueError as exc:
        raise ScaffoldError(f"could not add {name} to {mesh.files[domain]} without breaking it: {exc}") from exc
    if updated.model_copy(update={"products": descriptor.products}) != descriptor or [
        p.name for p in updated.products
    ] != [*(p.name for p in descriptor.products), name]:
        raise ScaffoldError(f"could not add {name} to {mesh.files[domain]}: its layout is not one this tool edits")
    problems = product_rules(updated, mesh.files[domain])
    if problems:
        raise ScaffoldError(f"{name} would break {mesh.files[domain]}: {problems[0]}")
    plan.write(path, new_text)
    return plan, domain if kind == "dbt" else None


def new_product(
    mesh: Mesh, domain: str, name: str, kind: str | None = None, content: ProductContent | None = None
) -> Scaffolded:
    plan, dbt_domain = plan_new_product(mesh, domain, name, kind, content)
    return apply(mesh, plan, dbt_domain, [])
