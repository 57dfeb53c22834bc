"""The README's quick start says how to choose the UI's port, and what it says is what `make` does."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.test_ui import make_ui_command


def test_quick_start_names_ui_port_and_make_uses_it() -> None:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick_start, re.S)
    assert block, "the quick start has no ```bash block"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    (ui_line,) = [line for line in lines if "UI_PORT=" in line]
    args = shlex.split(ui_line)
    assert args[0] == "make" and args[1] in ("ui", "demo"), ui_line
    port = next(a.split("=", 1)[1] for a in args if a.startswith("UI_PORT="))
    dev = make_ui_command(int(port), Path("/nonexistent/mesh-home"))  # what `make ui` runs (a dry run)
    assert dev[-2:] == ["-p", port] and "127.0.0.1" in dev


def _demo_plan(*overrides: str, env: dict[str, str] | None = None) -> list[str]:
    """The commands `make demo` runs (a dry run), one a line."""
    return subprocess.run(
        ["make", "-n", "--no-print-directory", "demo", "MESH_HOME=/nonexistent/mesh-home", *overrides],
        cwd=ROOT,
        env=env or {k: v for k, v in os.environ.items() if k != "MESH_NO_UI"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


def test_make_demo_prepares_once_then_seeds_runs_and_serves_the_ui() -> None:
    plan = _demo_plan("UI_PORT=3001")
    assert sum(" prepare" in line for line in plan) == 1, plan
    steps = [next(i for i, line in enumerate(plan) if part in line) for part in (" prepare", " seed ", " run", " dev ")]
    assert steps == sorted(steps) and plan[-1].endswith("-p 3001"), plan
    for headless in (_demo_plan("MESH_NO_UI=1"), _demo_plan(env={**os.environ, "MESH_NO_UI": "1"})):
        assert sum(" prepare" in line for line in headless) == 1 and headless[-1].endswith("mesh run"), headless
