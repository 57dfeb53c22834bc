"""End a `mesh` command without tearing down the interpreter's heap.

After `mesh run`, Python's own shutdown spends about a second of CPU freeing the objects Dagster,
dagster-dbt and the domains' definitions leave behind (module teardown; docs/performance.md),
although nothing is left to do.
`finish` does what shutdown does that matters — waits for non-daemon threads, runs atexit
handlers (logging's flush, multiprocessing's clean-up), flushes stdout and stderr — then exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{exc.code}\n")
    return 1


def finish(code: int) -> NoReturn:
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
