"""`mesh emit`: play the booking system, writing appointment-event batches into the landing folder."""

from __future__ import annotations

import json
import sys

import typer

from mesh_platform.cli.common import err, fail, load_mesh


def emit(
    batches: int = typer.Option(10, "--batches", help="How many batches (files) to write."),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between batches."),
    bookings: int = typer.Option(100, "--bookings", help="New appointments booked per batch."),
    seed: int = typer.Option(7, "--seed", help="Random seed of the feed."),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate", help="Share of lines cut short (0-1)."),
    redeliver_every: int = typer.Option(0, "--redeliver-every", help="Deliver every Nth batch twice (0: never)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per file written, on stdout."),
) -> None:
    """Write appointment events into MESH_HOME/landing/appointments over time, like a live feed.

    With `make ui` (or `dagster dev`) running, the scheduling domain's landing sensor folds each batch
    into `scheduling.appointments`, and the consumers update through automation."""
    from mesh_platform.orchestration.stream import Batch
    from mesh_platform.orchestration.stream import emit as run_feed

    if batches < 1 or bookings < 0 or interval < 0 or not 0 <= malformed_rate <= 1 or redeliver_every < 0:
        fail("--batches must be >= 1; --bookings, --interval, --redeliver-every >= 0; --malformed-rate in [0, 1]")
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
            err.print(f"{batch.path.name}: {batch.events} events, {batch.malformed} malformed{again}")

    run_feed(home.path, batches, interval, bookings, seed, malformed_rate, redeliver_every, report)


def register(app: typer.Typer) -> None:
    app.command("emit")(emit)
