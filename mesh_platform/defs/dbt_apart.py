"""dbt run in a process of its own whose environment holds none of the platform's secrets.

What a project renders when it is parsed or compiled (its manifest's descriptions and meta, which
become the Dagster UI's asset descriptions and column schemas; a parse error's message, which
`mesh validate` prints and the UI shows as the code location's error; dbt's log) is the domain's
to choose: `env_var("MESH_ALERT_WEBHOOK") | reverse` in a yml description, or in
`exceptions.raise_compiler_error(...)`, puts a secret there in a form no scan of the text
recognises. So the parses and compiles made outside a step (definitions loading, `mesh validate`,
`mesh prepare`, the lineage compile) run here: a child process started with the secret variables
(`environment_secrets.secret_names`) out of its environment, so `env_var()` cannot read them. The
processes that load definitions have other threads that read the environment, so it cannot be
changed in place there, as a step's own dbt does (`environment_secrets.without_secrets`).

    python -m mesh_platform.defs.dbt_apart RESULT_FILE ARG...   # the child: dbt ARG..., result in RESULT_FILE
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mesh_platform.project.environment_secrets import secret_names


@dataclass(frozen=True)
class DbtResult:
    success: bool
    error: str | None  # dbt's exception, when it raised one


def invoke_apart(args: list[str], env: Mapping[str, str]) -> DbtResult:
    """`dbt args...` in a child process: this process's environment with `env` and without its
    secrets. dbt's console output is not kept (its log is where `--log-path` says)."""
    secrets = set(secret_names(os.environ))
    environ = {k: v for k, v in os.environ.items() if k not in secrets}
    environ.update(env)
    with tempfile.TemporaryDirectory(prefix="mesh-dbt-") as scratch:
        result_file = Path(scratch) / "result.json"
        proc = subprocess.run(
            [sys.executable, "-m", __name__, str(result_file), *args],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        try:
            data = json.loads(result_file.read_text())
        except (OSError, ValueError):
            last = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            return DbtResult(False, f"dbt did not run: {last[0]}")
    return DbtResult(bool(data["success"]), data["error"])


def _main(result_file: str, args: list[str]) -> None:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(args)
    error = None if result.exception is None else str(result.exception)
    Path(result_file).write_text(json.dumps({"success": bool(result.success), "error": error}))


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2:])
