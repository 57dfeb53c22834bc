"""Generate the pharmacy's source systems: CSV exports and a JSON-lines appointment stream.

Deterministic: the same (scale, seed) writes the same bytes. Row counts grow linearly with
scale (1 = about 100k patients and 1M source rows). Known defects are injected at the rates in
`defects.DEFECT_RATES` and every one is recorded, with its file and line, in
`MESH_HOME/sources/defects.json`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from devtools.seed.defects import REDELIVERY_RATE, DefectLog, pick_defects
from mesh_platform.sdk.reference_data import VACCINE_CODES

AS_OF = "2024-06-30T23:59:59"
BAD_CODES = np.array(["999", "20X", "000"])
FIRST = np.array(
    [
        "Ava",
        "Ben",
        "Chloe",
        "Dan",
        "Emma",
        "Finn",
        "Grace",
        "Hugo",
        "Isla",
        "Jack",
        "Kai",
        "Lena",
        "Milo",
        "Nora",
        "Omar",
        "Pia",
        "Raj",
        "Sara",
        "Tom",
        "Uma",
        "Vera",
        "Will",
        "Xena",
        "Yara",
        "Zoe",
        "Ali",
        "Bea",
        "Cruz",
        "Dina",
        "Eli",
    ]
)
LAST = np.array(
    [
        "Smith",
        "Jones",
        "Garcia",
        "Brown",
        "Miller",
        "Davis",
        "Lopez",
        "Wilson",
        "Moore",
        "Taylor",
        "Thomas",
        "Lee",
        "Martin",
        "Clark",
        "Lewis",
        "Walker",
        "Young",
        "Allen",
        "King",
        "Wright",
        "Scott",
        "Green",
        "Baker",
        "Adams",
        "Nelson",
        "Hill",
        "Ramirez",
        "Campbell",
        "Mitchell",
    ]
)
STATES = np.array(["MA", "NY", "NJ", "CT", "PA", "RI", "NH", "VT", "ME", "MD"])
TOWNS = np.array(
    [
        "Springfield",
        "Riverside",
        "Franklin",
        "Greenville",
        "Bristol",
        "Clinton",
        "Fairview",
        "Salem",
        "Madison",
        "Georgetown",
    ]
)
START = np.datetime64("2021-01-01T00:00:00")
END = np.datetime64(AS_OF)
SPAN_S = int((END - START) / np.timedelta64(1, "s"))
EVENTS_PER_FILE = 50_000


def _count(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)


def _times(rng: np.random.Generator, n: int, lo: int = 0, hi: int = SPAN_S) -> np.ndarray:
    return START + rng.integers(lo, hi, n).astype("timedelta64[s]")


def _iso(values: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(values.astype("datetime64[s]"), unit="s").astype(object)


def _dates(values: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(values.astype("datetime64[D]"), unit="D").astype(object)


def _future(rng: np.random.Generator, n: int) -> np.ndarray:
    base = np.datetime64("2030-01-01T00:00:00")
    return _iso(base + rng.integers(0, 5 * 365 * 86400, n).astype("timedelta64[s]"))


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: pa.array(list(v) if v.dtype == object else v, type=pa.string()) for k, v in columns.items()})
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def _duplicate_keys(rng: np.random.Generator, keys: np.ndarray, positions: np.ndarray, defective: set[int]) -> None:
    """Give each row at `positions` the key of an earlier clean row."""
    for pos in positions:
        while True:
            source = int(rng.integers(0, pos))
            if source not in defective:
                keys[pos] = keys[source]
                break


def _lines(positions: np.ndarray, offset: int = 2) -> list[int]:
    return [int(p) + offset for p in positions]


def _patients(rng: np.random.Generator, n: int, home: Path, log: DefectLog) -> np.ndarray:
    ids = _ids("P", n, 7)
    first, last = rng.choice(FIRST, n), rng.choice(LAST, n)
    age_days = rng.integers(5 * 365, 95 * 365, n).astype("timedelta64[D]")
    dob = _dates(END.astype("datetime64[D]") - age_days)
    created = _iso(_times(rng, n))
    email = np.char.add(
        np.char.add(np.char.lower(np.char.add(np.char.add(first, "."), last)), np.arange(n).astype(str)), "@example.com"
    ).astype(object)
    phone = np.char.add("+1-555-", np.char.zfill(rng.integers(0, 10_000_000, n).astype(str), 7)).astype(object)
    phone = np.array([f"{p[:10]}-{p[10:]}" for p in phone], dtype=object)
    defects = pick_defects(rng, n, ["null_key", "duplicate_key", "future_date", "unparseable_value"], protect=1)
    defective = {int(p) for v in defects.values() for p in v}
    ids[defects["null_key"]] = None
    _duplicate_keys(rng, ids, defects["duplicate_key"], defective)
    created[defects["future_date"]] = _future(rng, len(defects["future_date"]))
    dob[defects["unparseable_value"]] = rng.choice(
        np.array(["31/02/1990", "unknown", "1985-13-45"]), len(defects["unparseable_value"])
    )
    _write_csv(
        home / "sources/patients/patients.csv",
        {
            "patient_id": ids,
            "first_name": first.astype(object),
            "last_name": last.astype(object),
            "email": email,
            "phone": phone,
            "date_of_birth": dob,
            "zip": np.char.zfill(rng.integers(1000, 99999, n).astype(str), 5),
            "state": rng.choice(STATES, n),
            "consent_marketing": np.where(rng.random(n) < 0.4, "true", "false"),
            "consent_research": np.where(rng.random(n) < 0.6, "true", "false"),
            "created_at": created,
        },
    )
    log.add("sources/patients/patients.csv", n, {k: _lines(v) for k, v in defects.items()})
    clean = np.ones(n, bool)
    clean[list(defective)] = False
    return _ids("P", n, 7)[clean]


def _sites(rng: np.random.Generator, n: int, home: Path, log: DefectLog) -> np.ndarray:
    ids = _ids("S", n, 4)
    names = np.array([f"Pharmacy #{i + 1} - {t}" for i, t in enumerate(rng.choice(TOWNS, n))], dtype=object)
    opened = _dates(np.datetime64("2010-01-01") + rng.integers(0, 3650, n).astype("timedelta64[D]"))
    _write_csv(
        home / "sources/pharmacy/sites.csv",
        {
            "site_id": ids,
            "site_name": names,
            "zip": np.char.zfill(rng.integers(1000, 99999, n).astype(str), 5),
            "state": rng.choice(STATES, n),
            "daily_capacity": rng.integers(40, 401, n).astype(str),
            "opened_on": opened,
        },
    )
    log.add("sources/pharmacy/sites.csv", n, {})
    return ids


def _lots(rng: np.random.Generator, n: int, sites: np.ndarray, home: Path, log: DefectLog) -> tuple:
    ids = _ids("L", n, 6)
    codes = rng.choice(np.array(list(VACCINE_CODES)), n)
    received = np.datetime64("2021-01-01") + rng.integers(0, 1200, n).astype("timedelta64[D]")
    expires = received + rng.integers(90, 365, n).astype("timedelta64[D]")
    written_codes = codes.astype(object).copy()
    defects = pick_defects(rng, n, ["unknown_code"])
    written_codes[defects["unknown_code"]] = rng.choice(BAD_CODES, len(defects["unknown_code"]))
    lot_sites = rng.choice(sites, n)
    _write_csv(
        home / "sources/pharmacy/vaccine_lots.csv",
        {
            "lot_id": ids,
            "vaccine_code": written_codes,
            "manufacturer": np.array([VACCINE_CODES[c] for c in codes], dtype=object),
            "site_id": lot_sites,
            "doses_received": (rng.integers(1, 20, n) * 50).astype(str),
            "received_on": _dates(received),
            "expires_on": _dates(expires),
        },
    )
    log.add("sources/pharmacy/vaccine_lots.csv", n, {k: _lines(v) for k, v in defects.items()})
    return ids, codes, lot_sites


def _doses(rng, n, patients, lots, home: Path, log: DefectLog) -> None:
    lot_ids, lot_codes, lot_sites = lots
    pick = rng.integers(0, len(lot_ids), n)
    ids = _ids("D", n, 8)
    codes = lot_codes[pick].astype(object)
    numbers = rng.choice(np.array(["1", "2", "3", "4"]), n, p=[0.45, 0.35, 0.15, 0.05]).astype(object)
    administered = _iso(_times(rng, n))
    defects = pick_defects(
        rng, n, ["null_key", "duplicate_key", "unknown_code", "future_date", "unparseable_value"], protect=1
    )
    defective = {int(p) for v in defects.values() for p in v}
    ids[defects["null_key"]] = None
    _duplicate_keys(rng, ids, defects["duplicate_key"], defective)
    codes[defects["unknown_code"]] = rng.choice(BAD_CODES, len(defects["unknown_code"]))
    administered[defects["future_date"]] = _future(rng, len(defects["future_date"]))
    numbers[defects["unparseable_value"]] = "two"
    _write_csv(
        home / "sources/immunizations/doses.csv",
        {
            "dose_id": ids,
            "patient_id": rng.choice(patients, n),
            "site_id": lot_sites[pick],
            "lot_id": lot_ids[pick],
            "vaccine_code": codes,
            "dose_number": numbers,
            "administered_at": administered,
        },
    )
    log.add("sources/immunizations/doses.csv", n, {k: _lines(v) for k, v in defects.items()})


def _tests(rng, n, patients, sites, home: Path, log: DefectLog) -> None:
    ids = _ids("T", n, 8)
    collected = _times(rng, n)
    resulted = _iso(collected + rng.integers(2 * 3600, 72 * 3600, n).astype("timedelta64[s]"))
    results = rng.choice(np.array(["negative", "positive", "inconclusive"]), n, p=[0.8, 0.17, 0.03]).astype(object)
    pending = rng.random(n) < 0.01
    resulted[pending], results[pending] = None, None
    collected_s = _iso(collected)
    defects = pick_defects(rng, n, ["null_key", "duplicate_key", "future_date"], protect=1)
    defective = {int(p) for v in defects.values() for p in v}
    ids[defects["null_key"]] = None
    _duplicate_keys(rng, ids, defects["duplicate_key"], defective)
    collected_s[defects["future_date"]] = _future(rng, len(defects["future_date"]))
    resulted[defects["future_date"]] = None
    _write_csv(
        home / "sources/immunizations/test_results.csv",
        {
            "test_id": ids,
            "patient_id": rng.choice(patients, n),
            "site_id": rng.choice(sites, n),
            "test_type": rng.choice(np.array(["pcr", "antigen"]), n),
            "result": results,
            "collected_at": collected_s,
            "resulted_at": resulted,
        },
    )
    log.add("sources/immunizations/test_results.csv", n, {k: _lines(v) for k, v in defects.items()})


def _appointment_events(rng, n, patients, sites) -> dict[str, np.ndarray]:
    """Each appointment's life: booked, 0-2 reschedules, then completed / cancelled / no-show."""
    booked = _times(rng, n, hi=SPAN_S - 86400)
    scheduled = booked + rng.integers(86400, 14 * 86400, n).astype("timedelta64[s]")
    events = {
        "appointment": [np.arange(n)],
        "type": [np.full(n, "booked", object)],
        "time": [booked],
        "scheduled": [scheduled.copy()],
    }
    reschedules = rng.choice(3, n, p=[0.7, 0.2, 0.1])
    current, last_time = scheduled.copy(), booked.copy()
    for k in (1, 2):
        who = np.flatnonzero(reschedules >= k)
        gap = np.maximum((current[who] - last_time[who]) / np.timedelta64(1, "s"), 2).astype(np.int64)
        when = last_time[who] + (rng.random(len(who)) * (gap - 1) + 1).astype("timedelta64[s]")
        current[who] = current[who] + rng.integers(86400, 7 * 86400, len(who)).astype("timedelta64[s]")
        last_time[who] = when
        events["appointment"].append(who)
        events["type"].append(np.full(len(who), "rescheduled", object))
        events["time"].append(when)
        events["scheduled"].append(current[who].copy())
    done = np.flatnonzero(current <= END)
    outcome = rng.choice(np.array(["completed", "cancelled", "no_show"], dtype=object), len(done), p=[0.75, 0.15, 0.1])
    gap = np.maximum((current[done] - last_time[done]) / np.timedelta64(1, "s"), 2).astype(np.int64)
    when = np.where(
        outcome == "cancelled",
        last_time[done] + (rng.random(len(done)) * (gap - 1) + 1).astype("timedelta64[s]"),
        current[done] + rng.integers(0, 3600, len(done)).astype("timedelta64[s]"),
    )
    events["appointment"].append(done)
    events["type"].append(outcome)
    events["time"].append(when)
    events["scheduled"].append(np.full(len(done), np.datetime64("NaT"), "datetime64[s]"))
    merged = {k: np.concatenate(v) for k, v in events.items()}
    order = np.lexsort((merged["appointment"], merged["time"]))
    merged = {k: v[order] for k, v in merged.items()}
    # ~1% arrive late: swapped with the next event in the stream
    for i in np.sort(rng.choice(len(order) - 1, max(1, len(order) // 100), replace=False)):
        for v in merged.values():
            v[i], v[i + 1] = v[i + 1], v[i]
    merged["patient"] = rng.choice(patients, n)[merged["appointment"]]
    merged["site"] = rng.choice(sites, n)[merged["appointment"]]
    merged["service"] = rng.choice(np.array(["test", "vaccination"]), n)[merged["appointment"]]
    return merged


def _event_lines(ev: dict[str, np.ndarray]) -> list[str]:
    times, scheduled = _iso(ev["time"]), ev["scheduled"]
    sched = np.where(np.isnat(scheduled), None, _iso(np.where(np.isnat(scheduled), END, scheduled)))
    appointment_ids = _ids("A", int(ev["appointment"].max()) + 1, 7)[ev["appointment"]]
    lines = []
    for i in range(len(times)):
        lines.append(
            json.dumps(
                {
                    "event_id": f"E{i + 1:09d}",
                    "appointment_id": appointment_ids[i],
                    "patient_id": ev["patient"][i],
                    "site_id": ev["site"][i],
                    "service": ev["service"][i],
                    "event_type": ev["type"][i],
                    "event_time": times[i],
                    "scheduled_for": sched[i],
                }
            )
        )
    return lines


def _events(rng, n, patients, sites, home: Path, log: DefectLog) -> int:
    lines = _event_lines(_appointment_events(rng, n, patients, sites))
    total = len(lines)
    defects = pick_defects(rng, total, ["malformed_json", "null_key"])
    for pos in defects["malformed_json"]:
        lines[pos] = lines[pos][: len(lines[pos]) // 2]
    for pos in defects["null_key"]:
        record = json.loads(lines[pos])
        record["appointment_id"] = None
        lines[pos] = json.dumps(record)
    bad = {int(p) for v in defects.values() for p in v}
    clean = np.array([i for i in range(total) if i not in bad])
    redeliver = np.sort(rng.choice(clean, max(1, round(REDELIVERY_RATE * total)), replace=False))
    # a redelivered event arrives again in the next file (or at the end of the last one)
    files: list[list[str]] = [lines[i : i + EVENTS_PER_FILE] for i in range(0, total, EVENTS_PER_FILE)]
    origin: list[list[int]] = [
        list(range(i, min(i + EVENTS_PER_FILE, total))) for i in range(0, total, EVENTS_PER_FILE)
    ]
    for pos in redeliver:
        target = min(int(pos) // EVENTS_PER_FILE + 1, len(files) - 1)
        files[target].append(lines[pos])
        origin[target].append(-1)
    folder = home / "landing" / "appointments"
    folder.mkdir(parents=True, exist_ok=True)
    for number, (content, positions) in enumerate(zip(files, origin, strict=True), start=1):
        name = f"events-{number:06d}.jsonl"
        (folder / name).write_text("\n".join(content) + "\n")
        line_of = {p: i + 1 for i, p in enumerate(positions) if p >= 0}
        log.add(
            f"landing/appointments/{name}",
            len(content),
            {k: [line_of[int(p)] for p in v if int(p) in line_of] for k, v in defects.items()},
        )
    return len(redeliver)


def seed(home: Path, scale: float = 1.0, seed: int = 42, progress: Callable[[str], None] | None = None) -> dict:
    """Write every source system's data into `home` (MESH_HOME) and return the defect report."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    home = Path(home)
    for folder in (home / "sources", home / "landing" / "appointments"):
        shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(seed)
    log = DefectLog()
    say = progress or (lambda _: None)
    say("patients")
    patients = _patients(rng, _count(100_000, scale), home, log)
    say("pharmacy")
    sites = _sites(rng, max(5, _count(200, scale)), home, log)
    lots = _lots(rng, max(10, _count(5_000, scale)), sites, home, log)
    say("immunizations")
    _doses(rng, _count(250_000, scale), patients, lots, home, log)
    _tests(rng, _count(250_000, scale), patients, sites, home, log)
    say("appointment events")
    redelivered = _events(rng, _count(200_000, scale), patients, sites, home, log)
    report = {
        "scale": scale,
        "seed": seed,
        "as_of": AS_OF,
        "generated_by": "mesh seed",
        "files": log.files,
        "totals": log.totals(redelivered),
    }
    (home / "sources" / "defects.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


__all__ = ["AS_OF", "seed"]
