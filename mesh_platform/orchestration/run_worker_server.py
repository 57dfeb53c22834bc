"""A warm parent for Dagster run workers: the libraries imported once, each run worker forked from it.

A run worker (`dagster api execute_run <ExecuteRunArgs>`, Dagster's own entry point for executing
one run) started as a new process spends most of a small run importing Dagster, dbt, Great
Expectations, DuckDB, pyarrow, OpenLineage and sqlglot. This server imports those libraries once
(and never the mesh's own code or a domain's: a forked worker imports them fresh from disk, so an
edit takes effect at the next run), listens on a Unix socket only its user may open, and for
each request forks a child that becomes the run worker: its own session, the requester's
environment and working directory, its output in the run's log file, and Dagster's `dagster`
console entry point called with the requested arguments. The server answers with the child's pid.
It listens before dbt and dagster-dbt are imported (`PRELOAD_DBT`, imported between requests
afterwards): on a cold start the first runs, often of domains without a dbt project, start earlier.
Once they are imported and no worker runs, it parses a throwaway dbt project
(`first_dbt_invocation`): dbt's first invocation in a process fills caches that every later one
reuses, so the dbt step of a worker forked afterwards does not pay for them.

The server exits when it has been idle for `MESH_RUN_WORKER_IDLE_S` seconds (default 1800), when
the installed packages change (a forked child would mix old and new modules), or when its socket
or its instance's directory is removed. It is started on demand by the run launcher
(`launcher.py`) and by `mesh run`, one per instance and interpreter; while one is starting,
others wait for it (a file lock).

This file is run as a script (`python -P run_worker_server.py ...`): its top level imports only the
standard library, and the server never imports `mesh_platform`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

# third-party modules every run worker of the mesh imports (never the mesh's own), imported before
# the server listens; the last ones are what Dagster imports on first use in a run worker (the
# SQLite storage's migrations, the run's log formatting): ~0.2 s of each run's start otherwise
PRELOAD = (
    "dagster",
    "great_expectations",
    "duckdb",
    "duckdb_engine",
    "pyarrow.parquet",
    "openlineage.client",
    "sqlglot",
    "sqlglot.dialects.duckdb",
    "sqlglot.optimizer.qualify",
    "yaml",
    "pydantic",
    "alembic.command",
    "alembic.runtime.migration",
    "rich.console",
    "rich.traceback",
    "structlog",
)
# what only the runs of domains with a dbt project import (1.3 s): imported once the server listens,
# one module between two requests, so that the first runs of a cold start do not wait for them (a
# worker forked before they are all imported imports the rest itself)
PRELOAD_DBT = ("dagster_dbt", "dbt.cli.main", "dbt.adapters.duckdb", "dbt.task.build", "sqlparse")
# a dbt project with one model: what dbt's first invocation in a process builds and caches for
# every later one (the JSON schemas its project, profile and node classes are validated with, the
# adapter's behaviour flags, the decoders of its manifest) is built by parsing it; a worker forked
# afterwards parses a domain's unchanged project in 0.2-0.3 s instead of 0.95-1 s
WARM_UP_DBT_PROJECT = {
    "dbt_project.yml": "name: mesh_warm_up\nversion: '1.0.0'\nconfig-version: 2\nprofile: mesh_warm_up\n"
    "flags:\n  send_anonymous_usage_stats: false\n",
    "profiles.yml": "mesh_warm_up:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
    "      path: ':memory:'\n",
    "models/warm_up.sql": "select 1 as id\n",
}
IDLE_ENV = "MESH_RUN_WORKER_IDLE_S"
DEFAULT_IDLE_S = 1800.0
START_TIMEOUT_S = 180.0  # a cold import on a busy 2-core machine
TICK_S = 5.0
SOCKETS = f"mesh-run-workers-{os.getuid()}"  # in the temp dir: a socket path must fit in 108 bytes


def packages_stamp() -> int:
    """Changes when packages are installed or removed (uv and pip rewrite site-packages)."""
    return os.stat(sysconfig.get_paths()["purelib"]).st_mtime_ns


class ServerUnavailable(Exception):
    """No warm server can take the request: the caller starts the worker as a plain process."""


@dataclass(frozen=True)
class ServerPaths:
    """Where the server of one Dagster instance directory and Python interpreter lives: its state
    (`.pid`, `.log`, `.lock`) in the instance's `run_workers/`, its socket in a directory of this
    user's only (a Unix socket's path is limited to 108 bytes; instance paths can be longer)."""

    state: Path  # without suffix
    socket: Path

    @classmethod
    def of(cls, instance_dir: Path, executable: str) -> ServerPaths:
        key = f"{os.path.realpath(instance_dir)}\0{os.path.realpath(executable)}"
        tag = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cls(instance_dir / "run_workers" / tag, Path(tempfile.gettempdir()) / SOCKETS / f"{tag}.sock")

    def suffixed(self, suffix: str) -> Path:
        return self.state.with_name(self.state.name + suffix)

    def make_dirs(self) -> None:
        """Both directories; the socket's must be this user's alone, as the socket takes requests to
        run code."""
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(mode=0o700, exist_ok=True)
        info = self.socket.parent.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise ServerUnavailable(f"{self.socket.parent} is not private to this user")


def _request(path: Path, message: Mapping[str, Any]) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    try:
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        answer = sock.makefile("r").readline().split()
    except OSError as exc:
        raise ServerUnavailable(str(exc)) from None
    finally:
        sock.close()
    if answer[:1] != ["pid"]:
        raise ServerUnavailable(" ".join(answer) or "no answer")
    return int(answer[1])


def _listening(path: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _server_pid(paths: ServerPaths) -> int | None:
    """The pid of the server started last, while it runs (perhaps still importing)."""
    try:
        pid = int(paths.suffixed(".pid").read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    # an empty command line: the process is that instant between fork and exec (or a zombie)
    ours = str(paths.socket).encode() in command or (not command and state != "Z")
    return pid if ours else None


def ensure_server(paths: ServerPaths, executable: str, wait: bool = True) -> bool:
    """Start the server unless one runs or is starting; with `wait`, until it listens. True if one
    was listening already. Raises ServerUnavailable when it cannot start."""
    paths.make_dirs()
    with open(paths.suffixed(".lock"), "w") as lock:  # one starter at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _listening(paths.socket):
            return True
        pid = _server_pid(paths)
        if pid is None:
            with open(paths.suffixed(".log"), "a") as out:
                server = subprocess.Popen(
                    [executable, "-P", __file__, str(paths.socket), str(paths.state)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # not in the terminal's process group: Ctrl-C is not its
                    close_fds=True,
                )
            pid = server.pid
            paths.suffixed(".pid").write_text(str(pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while wait and not _listening(paths.socket):
        if _server_pid(paths) != pid or time.monotonic() > deadline:
            raise ServerUnavailable(f"the run worker server did not start; see {paths.suffixed('.log')}")
        time.sleep(0.1)
    return False


def prestart(instance_dir: Path, executable: str) -> bool:
    """Start the server in the background if it is not running: its imports then overlap what the
    caller does before it launches runs. True if it was listening already."""
    try:
        return ensure_server(ServerPaths.of(instance_dir, executable), executable, wait=False)
    except (OSError, ServerUnavailable):
        return False


def fork_worker(
    instance_dir: Path, executable: str, argv: Sequence[str], env: Mapping[str, str], cwd: str, log: Path
) -> int:
    """A run worker `dagster <argv>` forked from the warm server of `instance_dir` (started if need
    be); its pid. Raises ServerUnavailable when there is no server to use."""
    paths = ServerPaths.of(instance_dir, executable)
    message = {"argv": list(argv), "env": dict(env), "cwd": cwd, "log": str(log)}
    try:
        return _request(paths.socket, message)
    except ServerUnavailable:
        try:
            ensure_server(paths, executable)
        except OSError as exc:
            raise ServerUnavailable(str(exc)) from None
        return _request(paths.socket, message)


# --- server -----------------------------------------------------------------------------------------


def warm_up(modules: Sequence[str] = PRELOAD + PRELOAD_DBT) -> None:
    """Import what a run worker imports, and keep the collector off the preloaded heap: a worker
    then neither scans it nor copies its pages (a collection writes to every object it visits)."""
    for module in modules:
        importlib.import_module(module)
    _dagster_main()
    _open_throwaway_instance()
    _freeze()


def first_dbt_invocation() -> bool:
    """Parse a throwaway dbt project in this process (see WARM_UP_DBT_PROJECT); True if dbt parsed
    it. No model is parsed by dbt's static parser, whose Rust threads would hang a forked child at
    its own next static parse; the parse opens no connection and leaves no thread behind
    (`tests/test_launcher.py` checks both)."""
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="mesh-run-worker-dbt-warm-up-") as directory:
        root = Path(directory)
        for name, text in WARM_UP_DBT_PROJECT.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        args = ["parse", "--project-dir", directory, "--profiles-dir", directory]
        args += ["--target-path", str(root / "target"), "--log-path", directory, "--no-static-parser"]
        args += ["--quiet", "--log-level", "none", "--log-level-file", "none"]
        return bool(dbtRunner().invoke(args).success)


def _warm_dbt() -> None:
    try:
        parsed = first_dbt_invocation()
    except Exception as exc:  # the server serves on; each worker's first dbt invocation pays as before
        print(f"dbt's warm-up parse raised {type(exc).__name__}: {exc}", flush=True)
        return
    if not parsed:
        print("dbt's warm-up parse failed; each worker's first dbt invocation pays as before", flush=True)


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def _open_throwaway_instance() -> None:
    """Open and close an instance in an empty directory: what Dagster imports to open a SQLite
    instance (its storages, schema migrations, the SQLite dialect) is then in every worker."""
    from dagster import DagsterInstance

    with tempfile.TemporaryDirectory(prefix="mesh-run-worker-warm-up-") as directory:
        (Path(directory) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with DagsterInstance.from_config(directory):
            pass


def _dagster_main() -> Any:
    """Dagster's `dagster` console command, found as the installed package declares it."""
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="dagster")
    return entry.load()


def serve(path: Path, state: Path) -> None:
    """Listen on `path` until idle, stale or orphaned; `state` is the instance's `run_workers/<tag>`."""
    started = time.monotonic()
    warm_up(PRELOAD)
    later: list[Callable[[], object]] = [functools.partial(importlib.import_module, m) for m in PRELOAD_DBT]
    later.append(_warm_dbt)
    idle_s = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    stamp = packages_stamp()
    staged = path.with_name(f".{path.stem}.{os.getpid()}.sock")
    staged.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(staged))
    os.chmod(staged, 0o600)
    listener.listen(16)
    listener.settimeout(TICK_S)
    os.replace(staged, path)  # appears listening, never half made
    inode = path.stat().st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: _stop(listener, path, inode, "terminated"))
    print(f"ready in {time.monotonic() - started:.1f} s, pid {os.getpid()}, {path}", flush=True)
    last = time.monotonic()
    workers: set[int] = set()  # forked workers, to tell when none runs
    while True:
        # the next module, or dbt's warm-up once no worker runs (its seconds of CPU would slow the
        # first runs of a cold start, and a request waits until it ends)
        due = later and (later[0] is not _warm_dbt or not _running(workers))
        if due and not select.select([listener], [], [], 0)[0]:  # no request waiting
            later.pop(0)()
            if not later or later[0] is _warm_dbt:  # dbt imported, then warmed up: each kept frozen
                _freeze()
                done = "warmed up" if not later else "imported"
                print(f"dbt {done} {time.monotonic() - started:.1f} s after the start", flush=True)
            continue
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if time.monotonic() - last > idle_s:
                _stop(listener, path, inode, f"idle for {idle_s:.0f} s")
            if not _still_ours(path, inode):
                _stop(listener, path, inode, "its socket was removed")
            if not state.parent.exists():
                _stop(listener, path, inode, "its instance directory was removed")
            continue
        last = time.monotonic()
        if packages_stamp() != stamp:
            with contextlib.suppress(OSError):
                conn.sendall(b"stale\n")
            conn.close()
            _stop(listener, path, inode, "the installed packages changed")
        if (pid := _answer(conn, listener)) is not None:
            workers.add(pid)


def _running(workers: set[int]) -> bool:
    """Whether a worker of `workers` runs; those that ended are dropped (the kernel reaps them)."""
    workers.difference_update({pid for pid in workers if not os.path.exists(f"/proc/{pid}")})
    return bool(workers)


def _still_ours(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def _stop(listener: socket.socket, path: Path, inode: int, why: str) -> NoReturn:
    listener.close()
    if _still_ours(path, inode):  # never a newer server's socket
        path.unlink(missing_ok=True)
    print(f"exiting: {why}", flush=True)
    os._exit(0)


def _answer(conn: socket.socket, listener: socket.socket) -> int | None:
    """Fork a worker for the request on `conn`; its pid (None for a probe or a bad request)."""
    try:
        conn.settimeout(30)
        line = conn.makefile("r").readline()
        if not line.strip():  # a probe: is the server listening?
            conn.close()
            return None
        request = json.loads(line)
        _check_request(request)
        pid = os.fork()
    except (OSError, ValueError) as exc:
        print(f"bad request: {exc}", flush=True)
        conn.close()
        return None
    if pid == 0:
        listener.close()
        conn.close()
        _become_worker(request)
    with contextlib.suppress(OSError):
        conn.sendall(f"pid {pid}\n".encode())
    conn.close()
    print(f"worker {pid}: dagster {' '.join(request['argv'][:2])}", flush=True)
    return pid


def _check_request(request: object) -> None:
    """Raise ValueError unless `request` is what the launcher sends: argv (strings), env (strings to
    strings), cwd and log (strings). Anything else is a bad request, never an error in the loop."""
    if not isinstance(request, dict):
        raise ValueError("not a JSON object")
    argv, env = request.get("argv"), request.get("env")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv: not a list of strings")
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError("env: not a mapping of strings")
    for key in ("cwd", "log"):
        if not isinstance(request.get(key), str):
            raise ValueError(f"{key}: not a string")


def _become_worker(request: Mapping[str, Any]) -> NoReturn:
    """In the forked child: become `dagster <argv>` as a new process would, then exit with its status."""
    code = 1
    try:
        os.setsid()
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["dagster", *request["argv"]]
        try:
            _dagster_main()()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # a worker always ends with a status, never back in the server's loop
        with contextlib.suppress(Exception):
            sys.stderr.write(f"run worker: {type(exc).__name__}: {exc}\n")
    # as a forked process ends (multiprocessing does the same): output flushed, no interpreter
    # teardown, which would write to every shared page of the server's heap
    with contextlib.suppress(Exception):
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
