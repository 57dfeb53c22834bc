"""The README's "Adding a domain" commands, run verbatim in a copy of the project, so they cannot drift."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_project, mesh_env

BIN = Path(sys.executable).parent


def adding_a_domain_commands(readme: Path) -> list[str]:
    text = readme.read_text()
    assert "## Adding a domain" in text, "README lacks the '## Adding a domain' section"
    section = text.split("## Adding a domain", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the 'Adding a domain' section has no ```bash block"
    commands = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def test_section_comes_before_layout_and_shows_the_steps() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.index("## Adding a domain") < text.index("## Layout")
    commands = adding_a_domain_commands(ROOT / "README.md")
    assert all(c.startswith(".venv/bin/") for c in commands), commands
    verbs = [shlex.split(c)[1] if c.startswith(".venv/bin/mesh") else "pytest" for c in commands]
    assert verbs.index("new-domain") < verbs.index("validate") < len(verbs) - verbs[::-1].index("run") - 1
    assert any("run --domain" in c and "new-domain" not in c for c in commands[verbs.index("new-domain") :])


@pytest.mark.slow
def test_adding_a_domain_as_the_readme_says(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    env = mesh_env(root, root / ".mesh")
    outputs = []
    for command in adding_a_domain_commands(ROOT / "README.md"):
        args = shlex.split(command)
        args[0] = str(BIN / args[0].removeprefix(".venv/bin/"))
        proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"`{command}` exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        outputs.append((command, proc.stdout))
    new_domain = next(c for c in adding_a_domain_commands(ROOT / "README.md") if " new-domain " in c)
    name = shlex.split(new_domain)[2]
    assert (root / "domains" / name / "domain.yaml").exists()
    described = next(out for command, out in outputs if f"products {name}." in command)
    assert "published" in described and "fresh" in described
    tested = next(out for command, out in outputs if "pytest" in command)
    assert "3 passed" in tested, tested
