"""Stopping a process started with `start_new_session` together with everything it started in its group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

GROUP_GONE_WAIT_S = 10.0


def group_alive(pgid: int) -> bool:
    """True while any process of the group `pgid` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_process_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the process group `proc` leads, up to `grace_s` for it to exit, then SIGKILL to what
    is left of the group, and return once none of it is: a Dagster code server the webserver or the
    daemon started can hang in its own shutdown and outlive them, holding hundreds of MB (and writing
    into a directory the caller is about to remove)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + GROUP_GONE_WAIT_S
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
