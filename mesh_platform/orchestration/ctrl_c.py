"""Ctrl-C in `mesh run`, acted on between polls rather than wherever it lands.

Python raises KeyboardInterrupt at whatever bytecode the main thread is running when SIGINT comes.
When that is a finalizer (SQLAlchemy's, run as Dagster's storage drops its engines), the exception
is printed as "Exception ignored" and lost, and `mesh run` goes on to the end as if no Ctrl-C had
come. So while `mesh run` waits for its domains, SIGINT only records that it came; `check`, called
between polls, raises it there. A second Ctrl-C raises at once, as without this module: the way
out when cancelling the runs takes too long.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class CtrlC:
    """Whether Ctrl-C came since `deferred_ctrl_c` began taking it."""

    def __init__(self) -> None:
        self.received = False

    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received = True

    def check(self) -> None:
        """Raise KeyboardInterrupt here if Ctrl-C came."""
        if self.received:
            raise KeyboardInterrupt


@contextlib.contextmanager
def deferred_ctrl_c() -> Iterator[CtrlC]:
    """SIGINT recorded in the yielded `CtrlC` while the block runs. Left as it is where SIGINT is
    ignored (a job started in the background without job control) or outside the main thread."""
    ctrl_c = CtrlC()
    previous = signal.getsignal(signal.SIGINT)
    # a handler installed outside Python (None) could not be put back
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield ctrl_c
        return
    signal.signal(signal.SIGINT, ctrl_c.on_sigint)
    try:
        yield ctrl_c
    finally:
        signal.signal(signal.SIGINT, previous)
