"""`workspace.yaml`: one Dagster code location per domain, named after it, loading its definitions.py.

`mesh run` and the UI run a domain through its code location; a domain without one validates and
then cannot run, so `mesh validate` checks the file (`workspace_problems`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mesh_platform.descriptor.problems import Problem
from mesh_platform.project.locations import MeshProject
from mesh_platform.text import one_line

WORKSPACE = "workspace.yaml"
RULE = "workspace-location"


def entry_for(domain: str) -> str:
    """The line `mesh new-domain` adds under `load_from:`."""
    return (
        f"  - python_file: {{relative_path: domains/{domain}/definitions.py, location_name: {domain}, "
        "working_directory: .}\n"
    )


def with_location(text: str, domain: str) -> str:
    """`text` (a workspace.yaml) with `domain`'s code location added (ValueError if it has one)."""
    if domain in python_file_locations(text):
        raise ValueError(f"already has a code location named {domain!r}")
    new = text.rstrip("\n") + "\n" + entry_for(domain)
    assert python_file_locations(new).get(domain) == f"domains/{domain}/definitions.py", "entry did not parse back"
    return new


def python_file_locations(text: str) -> dict[str, str]:
    """location name -> relative path of each `python_file` entry (ValueError if not a workspace)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"is not valid YAML: {one_line(str(exc))}") from exc
    entries = data.get("load_from") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("has no `load_from:` list of code locations")
    locations: dict[str, str] = {}
    for entry in entries:
        target: Any = entry.get("python_file") if isinstance(entry, dict) else None
        if isinstance(target, dict) and isinstance(target.get("location_name"), str):
            locations[target["location_name"]] = str(target.get("relative_path", ""))
    return locations


def workspace_problems(project: MeshProject) -> list[Problem]:
    """Each domain has a code location of its name loading its own definitions.py; no location
    loads a domain folder that is not there."""
    path = project.root / WORKSPACE
    if not path.exists():
        return [Problem(WORKSPACE, "", RULE, f"{WORKSPACE} not found: it lists one code location per domain")]
    try:
        locations = python_file_locations(path.read_text())
    except ValueError as exc:
        return [Problem(WORKSPACE, "", RULE, f"{WORKSPACE} {exc}")]
    problems = []
    for domain in project.domain_names():
        expected = f"domains/{domain}/definitions.py"
        found = locations.get(domain)
        if found is None:
            message = (
                f"domain {domain!r} has no code location, so neither `mesh run` nor the UI can run it; "
                f"add under load_from: {entry_for(domain).strip()}"
            )
        elif Path(found).as_posix().removeprefix("./") != expected:
            message = f"code location {domain!r} loads {found}, not its domain's {expected}"
        else:
            continue
        problems.append(Problem(WORKSPACE, domain, RULE, message, domain=domain))
    for name, relative in sorted(locations.items()):
        if not (project.root / relative).exists():
            problems.append(
                Problem(WORKSPACE, name, RULE, f"code location {name!r} loads {relative}, which is not there")
            )
    return problems
