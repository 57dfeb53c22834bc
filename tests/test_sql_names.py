"""Names in SQL: keyword-like names the engines accept (`value`, `name`, `type`, `status`, `date`,
`timestamp`, `values`, `position`) work end to end — built, checked by Great Expectations, masked and
read through the governed read — and a reserved keyword (`order`) is refused by `mesh validate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import add_code_location, copy_project, mesh_env, run_mesh_cli

pytestmark = pytest.mark.slow

PRODUCER = """\
domain: keywords
owner: team:keywords
business_process: covid-testing-and-vaccination
description: A product whose columns are named like SQL keywords.
products:
  - name: records
    description: One row per record, with keyword-like column names.
    value: Proves that names the SQL engines accept as identifiers work end to end.
    columns:
      - {name: value, type: double, description: A measure, classification: public}
      - {name: name, type: string, description: A person's name, classification: pii}
      - {name: type, type: string, description: A kind, classification: public}
      - {name: status, type: string, description: A state, classification: public}
      - {name: date, type: date, description: A day, classification: public}
      - {name: timestamp, type: timestamp, description: A moment, classification: public}
      - {name: values, type: bigint, description: A count, classification: internal}
      - {name: position, type: integer, description: A rank, classification: internal}
    expectations:
      - {type: expect_column_values_to_not_be_null, kwargs: {column: value}, severity: error}
      - {type: expect_column_values_to_be_unique, kwargs: {column: name}, severity: error}
      - {type: expect_column_values_to_be_in_set, kwargs: {column: status, value_set: [open, done]}, severity: error}
      - {type: expect_column_values_to_match_regex, kwargs: {column: type, regex: "^[a-z]+$"}, severity: error}
      - type: expect_column_values_to_be_between
        kwargs: {column: position, min_value: 1, max_value: 3}
      - type: expect_column_pair_values_a_to_be_greater_than_b
        kwargs: {column_A: timestamp, column_B: date, or_equal: true}
        severity: warn
      - {type: expect_column_values_to_not_be_null, kwargs: {column: values}, severity: error}
    access:
      consumers: [keyword_readers]
"""
PRODUCER_CODE = '''\
from mesh_platform.sdk import AssetContext, product


@product("records")
def records(ctx: AssetContext) -> str:
    return """
        select cast(value as double) as value, name, type, status, date, timestamp,
            cast(values as bigint) as values, cast(position as integer) as position
        from (values
            (1.5, 'ada', 'a', 'open', date '2024-01-01', timestamp '2024-01-01 10:00', 10, 1),
            (2.5, 'bob', 'b', 'done', date '2024-01-02', timestamp '2024-01-02 11:00', 20, 2),
            (3.5, 'cy', 'c', 'open', date '2024-01-03', timestamp '2024-01-03 12:00', 30, 3)
        ) as t(value, name, type, status, date, timestamp, values, position)
    """
'''
CONSUMER = """\
domain: keyword_readers
owner: team:readers
business_process: covid-testing-and-vaccination
description: Reads the keyword-named product through the governed read.
consumes:
  - keywords.records
products:
  - name: by_status
    description: Records per status.
    value: Proves that a consumer reads keyword-named columns, masked as granted.
    columns:
      - {name: status, type: string, description: A state, classification: public}
      - {name: name, type: string, description: A masked name, classification: internal}
      - {name: values, type: bigint, description: A count, classification: internal}
"""
CONSUMER_CODE = """\
from mesh_platform.sdk import AssetContext, product


@product("by_status", reads=["keywords.records"])
def by_status(ctx: AssetContext) -> str:
    return f"select status, name, values from {ctx.read('keywords.records')}"
"""


def _domain(root: Path, name: str, descriptor: str, code: str) -> None:
    folder = root / "domains" / name
    folder.mkdir()
    (folder / "domain.yaml").write_text(descriptor)
    (folder / "assets.py").write_text(code)
    add_code_location(root, name)


def test_keyword_like_names_work_end_to_end_and_reserved_ones_are_refused(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    _domain(root, "keywords", PRODUCER, PRODUCER_CODE)
    _domain(root, "keyword_readers", CONSUMER, CONSUMER_CODE)
    env = mesh_env(root, tmp_path / "home")
    run_mesh_cli("validate", env=env, cwd=root, check=True)
    run_mesh_cli("run", "--domain", "keywords", "--domain", "keyword_readers", env=env, cwd=root, check=True)

    entry = json.loads(run_mesh_cli("products", "keywords.records", "--json", env=env, cwd=root, check=True).stdout)
    checks = {c["name"]: c for c in entry["status"]["checks"]}
    assert len(checks) == 8 and all(c["passed"] and c["ran"] for c in checks.values()), checks

    def read(ref: str, consumer: str) -> list[dict]:
        proc = run_mesh_cli("read", ref, "--as", consumer, "--limit", "0", "--json", env=env, cwd=root, check=True)
        return json.loads(proc.stdout)

    own = read("keywords.records", "keywords")
    assert {r["name"] for r in own} == {"ada", "bob", "cy"} and {r["position"] for r in own} == {1, 2, 3}
    masked = read("keywords.records", "keyword_readers")
    assert all(r["name"].startswith("tok_") for r in masked) and {r["values"] for r in masked} == {10, 20, 30}
    built = read("keyword_readers.by_status", "keyword_readers")
    assert sorted(r["status"] for r in built) == ["done", "open", "open"]
    assert all(r["name"].startswith("tok_") for r in built)

    descriptor = root / "domains" / "keywords" / "domain.yaml"
    descriptor.write_text(
        PRODUCER.replace("{name: status,", "{name: order,").replace("column: status", "column: order")
    )
    proc = run_mesh_cli("validate", env=env, cwd=root)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        "domains/keywords/domain.yaml:" in proc.stderr
        and "products[0].columns[3].name: [name-not-reserved]" in proc.stderr
    )
