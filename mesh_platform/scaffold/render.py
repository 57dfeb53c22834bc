"""Templates kept as files under `templates/`, rendered with `string.Template` ($name placeholders)."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

import yaml

TEMPLATES = Path(__file__).parent / "templates"


def render(template: str, **values: object) -> str:
    """`templates/<template>.tmpl` with every placeholder substituted (a missing one is a KeyError)."""
    text = (TEMPLATES / f"{template}.tmpl").read_text()
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def yaml_scalar(value: str) -> str:
    """`value` as a one-line YAML scalar: plain where YAML reads it back unchanged, else double-quoted."""
    plain = value.strip()
    try:
        if plain and "\n" not in plain and yaml.safe_load(f"k: {plain}") == {"k": plain}:
            return plain
    except yaml.YAMLError:
        pass
    return json.dumps(value)
