"""A warm process for `mesh` commands: the libraries imported once, each command forked from it.

A cold `mesh run` spends about 16 s importing before any work: Great Expectations (~9.5 s with
pandas, scipy and altair), dagster-dbt and dbt (~4 s), Dagster (~2 s). `mesh warm start` starts a
server that imports those libraries (never the mesh's own code, which stays fresh) and listens on
`MESH_HOME/warm/mesh.sock`. While it runs, `mesh <verb>` hands its terminal (stdin, stdout, stderr
as file descriptors), arguments, environment and working directory to the server, which forks a
worker that runs the command exactly as a fresh process would, and returns its exit status.
Ctrl-C and SIGTERM are passed on to the worker.

Nothing depends on it: without a server (or with `MESH_NO_WARM=1`, or after the installed packages
changed, which the server notices and exits) commands run cold as before.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import io
import json
import os
import signal
import socket
import sys
import sysconfig
import time
from pathlib import Path
from typing import NoReturn

from mesh_platform.cli.finish import exit_code, finish

# third-party modules a `mesh run` imports (measured with -X importtime), never the mesh's own code
PRELOAD = (
    "dagster",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._core.storage.local_compute_log_manager",
    "alembic.command",
    "dagster_dbt",
    "dbt.cli.main",
    "dbt.task.build",
    "great_expectations",
    "duckdb",
    "duckdb_engine",
    "pyarrow.parquet",
    "openlineage.client",
    "sqlglot",
    "rich.table",
    "typer",
)
DBT_MODULES = ("dagster_dbt", "dbt.cli.main", "dbt.task.build")
NO_WARM_ENV = "MESH_NO_WARM"
IDLE_TIMEOUT_S = 4 * 3600
MAX_MESSAGE = 1 << 20


def home_of(environ: dict[str, str] | os._Environ[str], cwd: str) -> Path:
    """The MESH_HOME a command would use (as `MeshProject.discover`, without importing the mesh)."""
    root = Path(environ.get("MESH_PROJECT_DIR") or cwd).resolve()
    return Path(environ.get("MESH_HOME") or root / ".mesh").resolve()


def socket_path(home: Path) -> Path:
    return home / "warm" / "mesh.sock"


def _packages_stamp() -> int:
    """Changes when packages are installed or removed (uv sync rewrites site-packages)."""
    return os.stat(sysconfig.get_paths()["purelib"]).st_mtime_ns


# --- client ---------------------------------------------------------------------------------------


def run_warm(argv: list[str]) -> int | None:
    """Run `mesh argv` in the warm server; None when there is none to use (run cold then)."""
    if os.environ.get(NO_WARM_ENV) == "1" or (argv and argv[0] == "warm"):
        return None
    path = socket_path(home_of(os.environ, os.getcwd()))
    if not path.exists() or len(str(path)) > 100:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        request = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(sock, [request], [0, 1, 2])
        reader = sock.makefile("r")
        first = reader.readline().split()
    except OSError:
        sock.close()
        return None
    if first[:1] != ["pid"]:
        sock.close()
        return None  # "stale": the server exits, this command runs cold
    worker = int(first[1])

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    status = reader.readline().split()
    sock.close()
    return int(status[1]) if status[:1] == ["exit"] else 1


# --- server ---------------------------------------------------------------------------------------


# dbt validates its project, profile and selectors against JSON Schemas it builds on first use
# (then caches per process); building them took about 2 s of a warm `mesh run`
DBT_SCHEMAS = (
    "dbt.contracts.project:Project",
    "dbt.contracts.project:PackageConfig",
    "dbt.contracts.project:ProjectFlags",
    "dbt.contracts.project:Configuration",
    "dbt.contracts.selection:SelectorFile",
    "dbt.adapters.duckdb.credentials:DuckDBCredentials",
    "dbt.adapters.postgres.connections:PostgresCredentials",
)


def warm_up(*, libraries: bool = True, dbt: bool = True) -> None:
    """Import the libraries and fill the per-process caches every command would fill again:
    `libraries`, those every domain uses (Dagster, GX, DuckDB, ...); `dbt`, dbt's and dagster-dbt's
    (a run of Python domains alone never imports them)."""
    for module in PRELOAD:
        if dbt if module in DBT_MODULES else libraries:
            importlib.import_module(module)
    if dbt:
        for path in DBT_SCHEMAS:
            module, name = path.split(":")
            getattr(importlib.import_module(module), name).json_schema()
        # dbt's behavior flags walk the stack with inspect.getmodule on every invocation; its cache
        # of module files is filled on the first walk
        inspect.getmodule(inspect.currentframe())
        inspect.stack()
    # the preloaded heap is never garbage: keep the collector off it, so workers neither scan it
    # nor copy its pages (a collection writes to every object it visits)
    gc.collect()
    gc.freeze()


def serve(home: Path) -> None:
    started = time.monotonic()
    warm_up()
    stamp = _packages_stamp()
    path = socket_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    listener.settimeout(IDLE_TIMEOUT_S)
    (path.parent / "pid").write_text(str(os.getpid()))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sessions are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: _stop(listener, path))
    print(f"warm: ready in {time.monotonic() - started:.1f} s, pid {os.getpid()}, {path}", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            _stop(listener, path)
        if _packages_stamp() != stamp:
            conn.sendall(b"stale\n")
            conn.close()
            print("warm: installed packages changed; exiting", flush=True)
            _stop(listener, path)
        if os.fork() == 0:
            listener.close()
            _session(conn)
        conn.close()


def _stop(listener: socket.socket, path: Path) -> None:
    listener.close()
    path.unlink(missing_ok=True)
    (path.parent / "pid").unlink(missing_ok=True)
    os._exit(0)


def _session(conn: socket.socket) -> None:
    """One command: fork the worker, tell the client its pid, wait, send its exit status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        message, fds, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE, 3)
        request = json.loads(message)
        worker = os.fork()
    except Exception:
        os._exit(1)
    if worker == 0:
        conn.close()
        _work(request, fds)  # ends the worker as a command ends: interpreter shutdown, exit status
    try:
        for fd in fds:
            os.close(fd)
        conn.sendall(f"pid {worker}\n".encode())
        started = time.monotonic()
        _, status = os.waitpid(worker, 0)
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
        print(f"warm: mesh {' '.join(request['argv'])}: exit {code} in {time.monotonic() - started:.1f} s", flush=True)
        conn.sendall(f"exit {code}\n".encode())
    finally:
        os._exit(0)


def _work(request: dict, fds: list[int]) -> NoReturn:
    """Become the command: its terminal, environment, directory and arguments; then run it."""
    code = 1
    try:
        os.setsid()  # the worker's own group: the server's signals are not its
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "rb", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "wb", closefd=False), encoding="utf-8", line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "wb", closefd=False), encoding="utf-8", line_buffering=True)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["mesh", *request["argv"]]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from mesh_platform.cli.app import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exit_code(exc)
    except BaseException as exc:  # the worker must always report an exit status
        with contextlib.suppress(Exception):
            sys.stderr.write(f"mesh (warm): {type(exc).__name__}: {exc}\n")
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
    finish(code)  # as a cold command ends: threads joined, atexit handlers run, output flushed


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
