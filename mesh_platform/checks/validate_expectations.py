"""Descriptor expectations that cannot run, found before any run: kwargs Great Expectations itself
refuses, and regular expressions DuckDB (RE2, where the checks run) cannot compile."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.mesh import Mesh
from mesh_platform.text import one_line


def regex_problem(con: duckdb.DuckDBPyConnection, kwargs: Mapping[str, object]) -> str | None:
    """Why a pattern of `kwargs` (`regex`, `regex_list`) would fail in DuckDB, or None. The checks
    match with DuckDB's `regexp_matches`, i.e. RE2: no look-around or back-references."""
    patterns: list[object] = [kwargs["regex"]] if "regex" in kwargs else []
    listed = kwargs.get("regex_list", [])
    if not isinstance(listed, list):  # GX takes a mapping for a run-time parameter, which no mesh run supplies
        return f"regex_list must be a list of regular expressions, got {type(listed).__name__}"
    patterns += listed
    for pattern in patterns:
        if not isinstance(pattern, str):
            return f"{pattern!r} is not a regular expression (a string)"
        try:
            con.execute("select regexp_matches('', ?)", [pattern])
        except duckdb.Error as exc:
            why = one_line(str(exc).removeprefix("Invalid Input Error: "))[:200]
            return f"{pattern[:200]!r} is not a regular expression DuckDB (RE2) can run: {why}"
    return None


def expectation_kwargs_problems(mesh: Mesh) -> list[Problem]:
    from mesh_platform.checks.evaluate import gx_expectation

    problems = []
    with duckdb.connect() as con:
        for domain, descriptor in mesh.descriptors.items():
            for i, product in enumerate(descriptor.products):
                for j, expectation in enumerate(product.expectations):
                    try:
                        gx_expectation(expectation.type, expectation.kwargs)
                    except Exception as exc:  # GX raises pydantic or its own errors
                        detail = one_line(str(exc))[:300]
                        rule, message = (
                            "expectation-kwargs",
                            f"Great Expectations rejects {expectation.type}({expectation.kwargs}): {detail}",
                        )
                    else:
                        why = regex_problem(con, expectation.kwargs)
                        if why is None:
                            continue
                        rule, message = "expectation-regex", f"{expectation.type}: {why}"
                    field = f"products[{i}].expectations[{j}].kwargs"
                    problems.append(Problem(mesh.files[domain], field, rule, message, domain=domain))
    return problems
