"""`mesh emit`: play the booking system, writing appointment-event batches into the landing folder."""

from __future__ import annotations

import json
import sys

import typer

from mesh_platform.cli.common import check_number, err, load_mesh, plain
from mesh_platform.text import counted

MAX_BOOKINGS = 1_000_000  # per batch: a batch is written from memory
MAX_INTERVAL_S = 86_400.0


def emit(
    batches: int = typer.Option(10, "--batches", min=1, help="How many batches (files) to write."),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between batches (0 to a day)."),
    bookings: int = typer.Option(100, "--bookings", min=0, max=MAX_BOOKINGS, help="New appointments booked per batch."),
    seed: int = typer.Option(7, "--seed", help="Random seed of the feed."),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate", help="Share of lines cut short (0-1)."),
    redeliver_every: int = typer.Option(
        0, "--redeliver-every", min=0, help="Deliver every Nth batch twice (0: never)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per file written, on stdout."),
) -> None:
    """Write appointment events into MESH_HOME/landing/appointments over time, like a live feed.

    With `make ui` (or `dagster dev`) running, the scheduling domain's landing sensor folds each batch
    into `scheduling.appointments`, and the consumers update through automation."""
    from devtools.appointment_feed import Batch
    from devtools.appointment_feed import emit as run_feed

    check_number("--interval", interval, 0, MAX_INTERVAL_S)
    check_number("--malformed-rate", malformed_rate, 0, 1)
    home = load_mesh().project.home
    home.ensure()

    def report(batch: Batch) -> None:
        record = {
            "file": str(batch.path),
            "events": batch.events,
            "malformed": batch.malformed,
            "redelivery_of": batch.redelivery_of,
            "landed_at": batch.landed_at,
        }
        if as_json:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        else:
            again = f" (again: {batch.redelivery_of})" if batch.redelivery_of else ""
            err.print(plain(f"{batch.path.name}: {counted(batch.events, 'event')}, {batch.malformed} malformed{again}"))

    run_feed(home.path, batches, interval, bookings, seed, malformed_rate, redeliver_every, report)


def register(app: typer.Typer) -> None:
    app.command("emit")(emit)
