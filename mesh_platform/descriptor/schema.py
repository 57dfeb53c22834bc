"""The descriptor's JSON Schema (for editors and other tools), generated from the pydantic model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh_platform.descriptor.model import Descriptor

SCHEMA_PATH = Path(__file__).with_name("domain.schema.json")


def descriptor_json_schema() -> dict[str, Any]:
    schema = Descriptor.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Data-product mesh domain descriptor (domains/<domain>/domain.yaml)"
    return schema
