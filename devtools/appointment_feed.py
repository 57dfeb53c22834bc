"""A live feed of appointment events: JSON-lines batches written into the landing folder over time.

`mesh emit` uses it to play the booking system: each batch books new appointments and moves earlier
ones through their lives (rescheduled, then completed, cancelled or no-show). Like a real feed it
delivers some events late (an earlier reschedule after the completion), some lines malformed, and
now and then a whole batch again. Files appear atomically (written aside, then renamed), so a
sensor never sees half a file.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from devtools.seed.generate import AS_OF

FOLDER = ("landing", "appointments")
ID = re.compile(r"^[PS]\d+$")


@dataclass
class Batch:
    number: int
    path: Path
    events: int
    malformed: int
    redelivery_of: str | None = None
    event_ids: list[str] = field(default_factory=list)
    appointment_ids: list[str] = field(default_factory=list)
    landed_at: float = 0.0


def _known_ids(path: Path, column: str, fallback: list[str]) -> list[str]:
    """Valid ids from a seeded source file (the feed books real patients at real sites)."""
    if not path.exists():
        return fallback
    with open(path, newline="") as f:
        rows = csv.reader(f)
        index = next(rows).index(column)
        ids = sorted({row[index] for row in rows if len(row) > index and ID.match(row[index])})
    return ids or fallback


class Feed:
    def __init__(self, home: Path, seed: int, bookings: int, malformed_rate: float = 0.0, late_rate: float = 0.05):
        self.home, self.rng = home, random.Random(seed)
        self.folder = home.joinpath(*FOLDER)
        self.bookings, self.malformed_rate, self.late_rate = bookings, malformed_rate, late_rate
        self.token = f"{seed}x{time.time_ns() // 1_000_000:x}"
        self.patients = _known_ids(home / "sources/patients/patients.csv", "patient_id", ["P0000001"])
        self.sites = _known_ids(home / "sources/pharmacy/sites.csv", "site_id", ["S0001"])
        self.clock = datetime.fromisoformat(AS_OF)
        self.open: dict[str, dict] = {}  # appointment -> its latest state
        self.late: list[dict] = []  # events held back to arrive in the next batch
        self.count = 0

    def _event(self, appointment: dict, kind: str, when: datetime, scheduled: datetime | None) -> dict:
        self.count += 1
        return {
            "event_id": f"L{self.token}-{self.count:08d}",
            "appointment_id": appointment["appointment_id"],
            "patient_id": appointment["patient_id"],
            "site_id": appointment["site_id"],
            "service": appointment["service"],
            "event_type": kind,
            "event_time": when.isoformat(),
            "scheduled_for": scheduled.isoformat() if scheduled else None,
        }

    def _events(self, number: int) -> list[dict]:
        rng, events = self.rng, list(self.late)
        self.late = []
        self.clock += timedelta(minutes=10)
        for appointment_id in list(self.open):
            appointment = self.open[appointment_id]
            if rng.random() > 0.5:
                continue
            when = self.clock - timedelta(seconds=rng.randint(1, 500))
            if rng.random() < 0.3 and appointment["reschedules"] < 2:
                appointment["reschedules"] += 1
                appointment["scheduled_for"] += timedelta(days=rng.randint(1, 7))
                events.append(self._event(appointment, "rescheduled", when, appointment["scheduled_for"]))
                continue
            outcome = rng.choices(["completed", "cancelled", "no_show"], weights=[75, 15, 10])[0]
            closing = self._event(appointment, outcome, when, None)
            if rng.random() < self.late_rate:  # a reschedule that happened first arrives after the outcome
                early = self._event(
                    appointment, "rescheduled", when - timedelta(seconds=30), appointment["scheduled_for"]
                )
                self.late.append(early)
            events.append(closing)
            del self.open[appointment_id]
        for i in range(self.bookings):
            appointment = {
                "appointment_id": f"L{self.token}-{number:05d}-{i:04d}",
                "patient_id": rng.choice(self.patients),
                "site_id": rng.choice(self.sites),
                "service": rng.choice(["test", "vaccination"]),
                "scheduled_for": self.clock + timedelta(days=rng.randint(1, 14)),
                "reschedules": 0,
            }
            self.open[appointment["appointment_id"]] = appointment
            when = self.clock - timedelta(seconds=rng.randint(1, 500))
            events.append(self._event(appointment, "booked", when, appointment["scheduled_for"]))
        return events

    def _write(self, name: str, lines: list[str]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path, tmp = self.folder / name, self.folder / f".{name}.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)  # atomic: the sensor sees the whole file or none of it
        return path

    def batch(self, number: int) -> Batch:
        events = self._events(number)
        lines, malformed = [], 0
        for event in events:
            line = json.dumps(event)
            if self.rng.random() < self.malformed_rate:
                line, malformed = line[: len(line) // 2], malformed + 1
            lines.append(line)
        path = self._write(f"stream-{self.token}-{number:05d}.jsonl", lines)
        return Batch(
            number,
            path,
            len(lines),
            malformed,
            event_ids=[e["event_id"] for e in events],
            appointment_ids=sorted({e["appointment_id"] for e in events}),
            landed_at=time.time(),
        )

    def redeliver(self, batch: Batch) -> Batch:
        """The same events again, in a new file: the platform must not count them twice."""
        path = self._write(f"{batch.path.stem}-redelivered.jsonl", batch.path.read_text().splitlines())
        return Batch(batch.number, path, batch.events, batch.malformed, str(batch.path.name), landed_at=time.time())


def emit(
    home: Path,
    batches: int,
    interval: float,
    bookings: int,
    seed: int,
    malformed_rate: float = 0.0,
    redeliver_every: int = 0,
    on_batch: Callable[[Batch], None] | None = None,
) -> list[Batch]:
    feed, written = Feed(home, seed, bookings, malformed_rate), []
    for number in range(1, batches + 1):
        if number > 1 and interval > 0:
            time.sleep(interval)
        written.append(feed.batch(number))
        if on_batch:
            on_batch(written[-1])
        if redeliver_every and number % redeliver_every == 0:
            written.append(feed.redeliver(written[-1]))
            if on_batch:
                on_batch(written[-1])
    return written
