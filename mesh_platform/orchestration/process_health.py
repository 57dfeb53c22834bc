"""Whether a process of this machine is alive: how a run's health is judged on one machine."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path


def process_alive(pid: int) -> bool:
    """True while `pid` runs on this machine (a zombie, dead but not yet reaped, is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def local_pid(pid: str | None, host: str | None) -> int | None:
    """`pid` as a number when `host` is this machine; None otherwise, or when `pid` is not one (tags
    a person can type in the UI's launchpad)."""
    digits = pid or ""
    if not digits.isdigit() or host != socket.gethostname():
        return None
    return int(digits) or None


def local_runner_pid(tags: Mapping[str, str]) -> int | None:
    """The pid of the `mesh run` process executing a run (its `mesh/pid` and `mesh/host` tags),
    when that process is on this machine; None otherwise."""
    return local_pid(tags.get("mesh/pid"), tags.get("mesh/host"))
