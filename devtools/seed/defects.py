"""Which defects the seeder injects, at which rates, and the record of what it injected.

Every rate is a fraction of the file's data rows; each kind gets at least one row so that a tiny
test scale still shows every kind. A row carries at most one defect, so counts are exact.
"""

from __future__ import annotations

import numpy as np

DEFECT_RATES: dict[str, float] = {
    "null_key": 0.001,  # the key column is empty
    "duplicate_key": 0.002,  # a later row repeats an earlier row's key with other values
    "unknown_code": 0.002,  # a vaccine code that is not a CVX code the pharmacy uses
    "future_date": 0.001,  # an event date after the load (years 2030-2035)
    "unparseable_value": 0.0005,  # a date or number that does not parse ("31/02/1990", "two")
    "malformed_json": 0.001,  # a truncated JSON line in an event file
}
REDELIVERY_RATE = 0.005  # events delivered twice (at-least-once delivery): not a defect


def pick_defects(rng: np.random.Generator, n: int, kinds: list[str], protect: int = 0) -> dict[str, np.ndarray]:
    """Disjoint sorted row positions per kind; positions below `protect` are left clean."""
    wanted = {k: max(1, round(DEFECT_RATES[k] * n)) for k in kinds}
    total = sum(wanted.values())
    if n - protect < total:
        return {k: np.array([], dtype=np.int64) for k in kinds}
    positions = rng.choice(np.arange(protect, n), size=total, replace=False)
    out, start = {}, 0
    for kind in kinds:
        out[kind] = np.sort(positions[start : start + wanted[kind]])
        start += wanted[kind]
    return out


class DefectLog:
    """What was written, per file: rows and the exact lines of each defect kind."""

    def __init__(self) -> None:
        self.files: dict[str, dict] = {}

    def add(self, file: str, rows: int, defects: dict[str, list[int]]) -> None:
        self.files[file] = {
            "rows": rows,
            "defects": {k: {"count": len(v), "lines": sorted(int(x) for x in v)} for k, v in defects.items() if len(v)},
        }

    def totals(self, redelivered: int) -> dict:
        defects: dict[str, int] = {}
        for info in self.files.values():
            for kind, d in info["defects"].items():
                defects[kind] = defects.get(kind, 0) + d["count"]
        rows = sum(info["rows"] for info in self.files.values())
        return {"rows": rows, "defects": dict(sorted(defects.items())), "redelivered_events": redelivered}
