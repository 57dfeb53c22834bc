"""The README's quick start says how to choose the UI's port, and what it says is what `make` does."""

from __future__ import annotations

import re
import shlex
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
