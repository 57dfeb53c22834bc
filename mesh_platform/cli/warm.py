"""`mesh warm`: keep the libraries imported in a server, so commands start warm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import typer

from mesh_platform.cli.common import err, fail, load_mesh, out, plain
from mesh_platform.warm import socket_path

START_TIMEOUT_S = 120.0


def _server_pid(pid_file: os.PathLike[str]) -> int | None:
    try:
        pid = int(Path(pid_file).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def warm(action: Literal["start", "stop", "status"] = typer.Argument("start")) -> None:
    """Start, stop or show the warm server of this MESH_HOME (`mesh` commands then skip ~16 s of imports)."""
    home = load_mesh().project.home.path
    sock = socket_path(home)
    pid_file = sock.parent / "pid"
    pid = _server_pid(pid_file)
    if action == "status":
        out.print(plain(f"warm: running, pid {pid}, {sock}" if pid and sock.exists() else "warm: not running"))
        raise SystemExit(0 if pid else 1)
    if action == "stop":
        if pid:
            os.kill(pid, signal.SIGTERM)
        err.print("warm: stopped" if pid else "warm: was not running")
        return
    if pid and sock.exists():
        err.print(f"warm: already running, pid {pid}")
        return
    if len(str(sock)) > 100:
        fail(f"{sock}: too long a path for a Unix socket; use a shorter MESH_HOME")
    sock.parent.mkdir(parents=True, exist_ok=True)
    with open(sock.parent / "server.log", "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mesh_platform.warm", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (sock.exists() and _server_pid(pid_file) == proc.pid):
        if proc.poll() is not None or time.monotonic() > deadline:
            fail(f"the warm server did not start; see {sock.parent / 'server.log'}")
        time.sleep(0.2)
    err.print(
        plain(f"warm: ready, pid {proc.pid}; `mesh` commands for {home} now start warm (`mesh warm stop` ends it)")
    )


def register(app: typer.Typer) -> None:
    app.command("warm")(warm)
