"""`make install PYTHON=... VENV=...`: the venv is built by the interpreter asked for, and rebuilt when it changes.

Dry runs (`make -n`) of the Makefile in the repository, against a venv directory in tmp_path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

THIS_PYTHON = f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}"


def make_install_plan(python: str, venv: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), "install", f"PYTHON={python}", f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_venv_built_by_this_interpreter_is_reused(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / f".installed-{THIS_PYTHON}").touch()
    plan = make_install_plan(sys.executable, venv)
    assert plan.returncode == 0, plan.stderr
    assert "uv sync" not in plan.stdout and f"{venv}/bin/mesh prepare" in plan.stdout


def test_a_venv_built_by_another_interpreter_is_synced_with_the_one_asked_for(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed-cpython-3.10.0").touch()
    plan = make_install_plan(sys.executable, venv)
    assert plan.returncode == 0, plan.stderr
    assert f"UV_PROJECT_ENVIRONMENT={venv} " in plan.stdout
    assert f"sync --frozen --python {sys.executable}" in plan.stdout
    assert f"touch {venv}/.installed-{THIS_PYTHON}" in plan.stdout


def test_an_interpreter_that_does_not_run_is_named_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "python3.99"
    proc = subprocess.run(
        ["make", "-C", str(ROOT), "install", f"PYTHON={missing}", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"PYTHON={missing} does not run" in proc.stderr
    assert not (tmp_path / "venv").exists()
