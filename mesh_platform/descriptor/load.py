"""Read every `domains/<domain>/domain.yaml`, validating each file on its own.

A file that does not parse or validate yields `Problem`s (file, field, rule) and no descriptor;
the other domains are unaffected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.problems import Problem

DESCRIPTOR_FILE = "domain.yaml"


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its closest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


_RULES = {
    "missing": "required",
    "string_too_short": "not-empty",
    "string_pattern_mismatch": "name-format",
    "extra_forbidden": "unknown-key",
    "too_short": "not-empty",
    "literal_error": "allowed-values",
}


def _rule_for(error: Any) -> str:
    message = str(error.get("msg", ""))
    if "expectation type" in message:
        return "expectation-type"
    if "owner" in message:
        return "owner-format"
    return _RULES.get(error["type"], error["type"].replace("_", "-"))


# libyaml when the platform has it: a descriptor is read at every step of every run
LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_parsed: dict[tuple[str, str], tuple[int, int, tuple[Descriptor | None, list[Problem]]]] = {}


def load_descriptor(path: Path, rel: str) -> tuple[Descriptor | None, list[Problem]]:
    """Parse and validate one descriptor; a file unchanged since this process last read it (same
    size and modification time) is not parsed again."""
    try:
        stat = path.stat()
    except OSError:
        return _load_descriptor(path, rel)
    key = (str(path), rel)
    cached = _parsed.get(key)
    if cached is None or cached[:2] != (stat.st_mtime_ns, stat.st_size):
        cached = _parsed[key] = (stat.st_mtime_ns, stat.st_size, _load_descriptor(path, rel))
    descriptor, problems = cached[2]
    return (descriptor.model_copy(deep=True) if descriptor else None), list(problems)


def _load_descriptor(path: Path, rel: str) -> tuple[Descriptor | None, list[Problem]]:
    domain = path.parent.name
    try:
        text = path.read_text()
        node = yaml.compose(text, Loader=LOADER)
        data = yaml.load(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        detail = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(rel, "", "yaml", f"malformed YAML: {detail}", line, domain)]
    except OSError as exc:
        return None, [Problem(rel, "", "readable", f"cannot read the descriptor: {exc}", None, domain)]
    if not isinstance(data, dict):
        return None, [Problem(rel, "", "yaml", "the descriptor must be a YAML mapping", 1, domain)]
    try:
        descriptor = Descriptor.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(Problem(rel, _field_path(loc), _rule_for(error), message, _line_of(node, loc), domain))
        return None, problems
    if descriptor.domain != domain:
        return descriptor, [
            Problem(
                rel,
                "domain",
                "domain-matches-folder",
                f"domain {descriptor.domain!r} must equal its folder name {domain!r}",
                _line_of(node, ("domain",)),
                domain,
            )
        ]
    return descriptor, []
