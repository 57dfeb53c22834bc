"""The README's walk-throughs ("Adding a product", "Adding a domain"), run verbatim in a copy of the
project, so that what a newcomer types is what works."""

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
README = ROOT / "README.md"


def section(readme: Path, title: str) -> str:
    text = readme.read_text()
    assert f"\n## {title}\n" in text, f"README lacks the '## {title}' section"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def walkthrough_commands(readme: Path, title: str) -> list[str]:
    """Every command of the section's fenced shell blocks, in order, comments left out."""
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", section(readme, title), re.S)
    assert blocks, f"the '{title}' section has no ```bash block"
    commands = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def verbs(commands: list[str]) -> list[str]:
    return [
        shlex.split(c)[1] if c.startswith(".venv/bin/mesh") else shlex.split(c)[0].rsplit("/", 1)[-1] for c in commands
    ]


def run_walkthrough(tmp_path: Path, title: str) -> tuple[Path, dict[str, str]]:
    """Run the section's commands from the root of a fresh copy of the project (as a newcomer's
    checkout after `make install`), each required to succeed; the copy and each command's output."""
    root = copy_project(tmp_path / "project")
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    env = mesh_env(root, root / ".mesh")
    outputs: dict[str, str] = {}
    for command in walkthrough_commands(README, title):
        args = shlex.split(command)
        assert args[0].startswith(".venv/bin/"), command
        args[0] = str(BIN / args[0].removeprefix(".venv/bin/"))
        proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"`{command}` exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        outputs[command] = proc.stdout + proc.stderr  # `mesh validate` reports on stderr
    return root, outputs


def output_of(outputs: dict[str, str], fragment: str) -> str:
    (command,) = [c for c in outputs if fragment in c]
    return outputs[command]


def test_walkthroughs_come_before_the_reference_and_show_the_steps() -> None:
    text = README.read_text()
    assert text.index("## Adding a product") < text.index("## Adding a domain") < text.index("## Governance")
    assert text.index("## Adding a domain") < text.index("## Map of the code")

    product = walkthrough_commands(README, "Adding a product")
    assert all(c.startswith(".venv/bin/") for c in product), product
    steps = verbs(product)
    domain, name = shlex.split(product[steps.index("new-product")])[2:4]
    assert steps.index("new-product") < steps.index("validate") < steps.index("run") < steps.index("products")
    assert f"run --domain {domain}" in product[steps.index("run")]
    assert f"products {domain}.{name}" in product[steps.index("products")]

    new = walkthrough_commands(README, "Adding a domain")
    assert all(c.startswith(".venv/bin/") for c in new), new
    steps = verbs(new)
    assert steps.index("new-domain") < steps.index("validate") < len(steps) - steps[::-1].index("run") - 1
    assert any("run --domain" in c and "new-domain" not in c for c in new[steps.index("new-domain") :])


@pytest.mark.slow
def test_adding_a_product_as_the_readme_says(tmp_path: Path) -> None:
    root, outputs = run_walkthrough(tmp_path, "Adding a product")
    new_product = next(c for c in outputs if " new-product " in c)
    domain, name = shlex.split(new_product)[2:4]
    # the descriptor entry and the code that builds it, in the domain's own files
    assert f"- name: {name}" in (root / "domains" / domain / "domain.yaml").read_text()
    assert f'@product("{name}")' in (root / "domains" / domain / "assets.py").read_text()
    assert "0 problem(s)" in output_of(outputs, " validate")
    # built, audited against its contract and published, every check passed
    run = output_of(outputs, f"run --domain {domain}")
    (row,) = [line.split() for line in run.splitlines() if line.startswith(f"{domain}.{name} ")]
    assert row[1:3] == ["published", "3"] and row[5:7] == ["0", "0"], run
    described = output_of(outputs, f"products {domain}.{name}")
    assert "published" in described and "fresh" in described and "0 ✘" in described, described
    # the owner reads its rows back
    read = output_of(outputs, f"read {domain}.{name}")
    assert all(f"item_{i}" in read for i in (1, 2, 3)), read
    # the domain's own tests still pass with the new product in it
    tested = output_of(outputs, "pytest")
    assert re.search(r"\b\d+ passed\b", tested) and not re.search(r"\b\d+ (failed|errors?)\b", tested), tested


@pytest.mark.slow
def test_adding_a_domain_as_the_readme_says(tmp_path: Path) -> None:
    root, outputs = run_walkthrough(tmp_path, "Adding a domain")
    new_domain = next(c for c in outputs if " new-domain " in c)
    name = shlex.split(new_domain)[2]
    assert (root / "domains" / name / "domain.yaml").exists()
    assert f"location_name: {name}," in (root / "workspace.yaml").read_text()
    described = output_of(outputs, f"products {name}.")
    assert "published" in described and "fresh" in described
    assert "3 passed" in output_of(outputs, "pytest"), output_of(outputs, "pytest")
