"""The seeder: deterministic, linear in scale, and honest about every defect it injects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb

from devtools.seed import DEFECT_RATES, seed


def _digest(home: Path) -> dict[str, str]:
    files = sorted(p for p in home.rglob("*") if p.is_file())
    return {p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    seed(tmp_path / "a", scale=0.01, seed=7)
    seed(tmp_path / "b", scale=0.01, seed=7)
    seed(tmp_path / "c", scale=0.01, seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_rows_grow_linearly_with_scale(tmp_path: Path) -> None:
    small = seed(tmp_path / "s", scale=0.02)["totals"]["rows"]
    large = seed(tmp_path / "l", scale=0.04)["totals"]["rows"]
    assert 1.9 < large / small < 2.1
    assert 18_000 < small < 24_000  # scale 1 is about 1M source rows


def test_every_defect_kind_is_injected_and_recorded(tmp_path: Path) -> None:
    report = seed(tmp_path, scale=0.05)
    assert set(report["totals"]["defects"]) == set(DEFECT_RATES)
    assert report["totals"]["redelivered_events"] > 0
    assert json.loads((tmp_path / "sources" / "defects.json").read_text()) == report


def test_recorded_defect_lines_are_really_defective(tmp_path: Path) -> None:
    report = seed(tmp_path, scale=0.05)
    keys = {"patients.csv": "patient_id", "doses.csv": "dose_id", "test_results.csv": "test_id"}
    for file, info in report["files"].items():
        path = tmp_path / file
        if file.endswith(".jsonl"):
            lines = path.read_text().splitlines()
            for line in info["defects"].get("malformed_json", {}).get("lines", []):
                try:
                    json.loads(lines[line - 1])
                    raise AssertionError(f"{file}:{line} parses")
                except json.JSONDecodeError:
                    pass
            for line in info["defects"].get("null_key", {}).get("lines", []):
                assert json.loads(lines[line - 1])["appointment_id"] is None
            continue
        rows = duckdb.sql(
            f"select row_number() over () + 1 as line, * from read_csv('{path}', all_varchar = true)"
        ).fetchall()
        assert len(rows) == info["rows"]
        key = keys.get(path.name)
        header = ["line", *duckdb.sql(f"select * from read_csv('{path}', all_varchar = true) limit 0").columns]
        by_line = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
        for line in info["defects"].get("null_key", {}).get("lines", []):
            assert by_line[line][key] is None
        for line in info["defects"].get("duplicate_key", {}).get("lines", []):
            earlier = {r[key] for n, r in by_line.items() if n < line}
            assert by_line[line][key] in earlier
        for line in info["defects"].get("unknown_code", {}).get("lines", []):
            assert by_line[line]["vaccine_code"] not in {"207", "208", "210", "211", "212", "300", "301"}
        for line in info["defects"].get("future_date", {}).get("lines", []):
            row = by_line[line]
            stamp = row.get("created_at") or row.get("administered_at") or row.get("collected_at")
            assert stamp >= "2030"
