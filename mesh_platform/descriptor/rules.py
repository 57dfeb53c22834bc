"""Rules across descriptors: expectations name real columns and a type a check can run, consumes
resolve and are granted, and the domain graph has no cycle."""

from __future__ import annotations

from collections.abc import Mapping

from mesh_platform.descriptor.expectations import UNSUPPORTED_TYPES
from mesh_platform.descriptor.model import Descriptor, Expectation, Product
from mesh_platform.descriptor.problems import Problem


def product_rules(descriptor: Descriptor, file: str) -> list[Problem]:
    problems = []
    for i, product in enumerate(descriptor.products):
        for j, expectation in enumerate(product.expectations):
            problems += _expectation_rules(
                descriptor.domain, file, product, f"products[{i}].expectations[{j}]", expectation
            )
        for reader in product.access.pii_readers:
            if not product.access.grants(reader):
                problems.append(
                    Problem(
                        file,
                        f"products[{i}].access.pii_readers",
                        "pii-reader-is-consumer",
                        f"{reader!r} may read pii of {product.name!r} but is not in access.consumers",
                        domain=descriptor.domain,
                    )
                )
    return problems


def _expectation_rules(domain: str, file: str, product: Product, at: str, expectation: Expectation) -> list[Problem]:
    """An expectation names only the product's columns (its row condition's too), a row condition
    SQL can run and a type a mesh check can run."""
    names = {c.name for c in product.columns}
    problems = [
        Problem(
            file,
            f"{at}.kwargs",
            "expectation-column",
            f"expectation {expectation.type} names column {column!r}, which product {product.name!r} does not declare",
            domain=domain,
        )
        for column in [*expectation.columns, *expectation.condition_columns]
        if column not in names
    ]
    if expectation.row_condition_problem:
        problems.append(
            Problem(
                file,
                f"{at}.kwargs.condition_parser",
                "expectation-row-condition",
                f"product {product.name!r}, expectation {expectation.type}: {expectation.row_condition_problem}",
                domain=domain,
            )
        )
    if expectation.type in UNSUPPORTED_TYPES:
        problems.append(
            Problem(
                file,
                f"{at}.type",
                "expectation-unsupported",
                f"product {product.name!r}: expectation {expectation.type} cannot run as a mesh check: "
                + UNSUPPORTED_TYPES[expectation.type],
                domain=domain,
            )
        )
    return problems


def consume_rules(descriptors: Mapping[str, Descriptor], files: Mapping[str, str], broken: set[str]) -> list[Problem]:
    problems = []
    for domain, descriptor in descriptors.items():
        for i, pinned in enumerate(descriptor.consumes):
            ref, _, major = pinned.partition("@")
            producer_name, product_name = ref.split(".", 1)
            field = f"consumes[{i}]"
            if producer_name == domain:
                problems.append(
                    Problem(
                        files[domain],
                        field,
                        "consume-other-domain",
                        f"{ref}: a domain reads its own products directly, not through consumes",
                        domain=domain,
                    )
                )
                continue
            if producer_name in broken:
                problems.append(
                    Problem(
                        files[domain],
                        field,
                        "producer-valid",
                        f"{ref}: the producer's descriptor {files[producer_name]} is invalid",
                        domain=domain,
                    )
                )
                continue
            producer = descriptors.get(producer_name)
            product = producer.product(product_name) if producer else None
            if product is None:
                where = "no such domain" if producer is None else f"{files[producer_name]} declares no such product"
                problems.append(Problem(files[domain], field, "consume-exists", f"{ref}: {where}", domain=domain))
                continue
            if major:
                pinned_product = next((p for p in producer.majors_of(product_name) if p.major == int(major)), None)
                if pinned_product is None:
                    majors = [f"@{p.major}" for p in producer.majors_of(product_name) if p.major is not None]
                    published = ", ".join(majors)
                    problems.append(
                        Problem(
                            files[domain],
                            field,
                            "consume-major",
                            f"{pinned}: {files[producer_name]} publishes no major {major} of {product_name!r} "
                            f"(published: {published or 'no declared version'})",
                            domain=domain,
                        )
                    )
                    continue
                product = pinned_product
            if not product.access.grants(domain):
                index = producer.products.index(product)
                problems.append(
                    Problem(
                        files[domain],
                        field,
                        "access-granted",
                        f"{pinned} is not granted to {domain!r}: add {domain!r} to "
                        f"products[{index}].access.consumers in {files[producer_name]}",
                        domain=domain,
                    )
                )
    return problems


def cycle_rules(descriptors: Mapping[str, Descriptor], files: Mapping[str, str]) -> list[Problem]:
    graph = {d: sorted(desc.consumed_domains & descriptors.keys()) for d, desc in descriptors.items()}
    problems, seen_cycles = [], set()
    state: dict[str, int] = {}  # 1 = on stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for upstream in graph[node]:
            if state.get(upstream) == 1:
                cycle = [*stack[stack.index(upstream) :], upstream]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    problems.append(
                        Problem(
                            files[node],
                            "consumes",
                            "no-cycles",
                            "domains consume each other in a cycle: " + " -> ".join(reversed(cycle)),
                            domain=node,
                        )
                    )
            elif upstream not in state:
                visit(upstream, [*stack, upstream])
        state[node] = 2

    for domain in sorted(graph):
        if domain not in state:
            visit(domain, [domain])
    return problems


def domain_order(descriptors: Mapping[str, Descriptor]) -> list[str]:
    """Domains with producers before consumers (ties by name); cycles broken arbitrarily."""
    order: list[str] = []
    remaining = dict(descriptors)
    while remaining:
        ready = sorted(d for d, desc in remaining.items() if not (desc.consumed_domains & remaining.keys() - {d}))
        ready = ready or sorted(remaining)[:1]
        for d in ready:
            order.append(d)
            del remaining[d]
    return order
