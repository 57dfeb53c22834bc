"""The OpenLineage JSON Schema the mesh's events are validated against: the run event of spec 2-0-2
and the facets the mesh emits, at the versions the OpenLineage client names in each `_schemaURL`.
Written out from the published specification (https://openlineage.io/spec/2-0-2/OpenLineage.json and
https://openlineage.io/spec/facets/), since no installed package ships the schema files: required
fields, types and enumerations as the spec states them."""

from __future__ import annotations

from typing import Any

BASE_FACET = {
    "type": "object",
    "properties": {
        "_producer": {"type": "string", "format": "uri"},
        "_schemaURL": {"type": "string", "format": "uri"},
        "_deleted": {"type": "boolean"},
    },
    "required": ["_producer", "_schemaURL"],
}


def facet(properties: dict[str, Any], required: list[str], schema_url: str) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/$defs/BaseFacet"},
            {
                "type": "object",
                "properties": {"_schemaURL": {"const": schema_url}, **properties},
                "required": required,
            },
        ]
    }


FACETS = "https://openlineage.io/spec/facets"
OWNERS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
        "required": ["name"],
    },
}
SCHEMA_FIELD = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "description": {"type": "string"},
        "fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}},
    },
    "required": ["name"],
}
INPUT_FIELD = {
    "type": "object",
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "field": {"type": "string"},
        "transformations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["DIRECT", "INDIRECT"]},
                    "subtype": {"type": "string"},
                    "description": {"type": "string"},
                    "masking": {"type": "boolean"},
                },
                "required": ["type"],
            },
        },
    },
    "required": ["namespace", "name", "field"],
}

DATASET_FACETS = {
    "schema": facet(
        {"fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}}},
        [],
        f"{FACETS}/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    ),
    "ownership": facet(
        {"owners": OWNERS}, [], f"{FACETS}/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet"
    ),
    "version": facet(
        {"datasetVersion": {"type": "string"}},
        ["datasetVersion"],
        f"{FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    ),
    "symlinks": facet(
        {
            "identifiers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "namespace": {"type": "string"},
                        "name": {"type": "string"},
                        "type": {"type": "string"},
                    },
                    "required": ["namespace", "name", "type"],
                },
            }
        },
        ["identifiers"],
        f"{FACETS}/1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet",
    ),
    "storage": facet(
        {"storageLayer": {"type": "string"}, "fileFormat": {"type": "string"}},
        ["storageLayer"],
        f"{FACETS}/1-0-1/StorageDatasetFacet.json#/$defs/StorageDatasetFacet",
    ),
    "columnLineage": facet(
        {
            "fields": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "inputFields": {"type": "array", "items": INPUT_FIELD},
                        "transformationDescription": {"type": "string"},
                        "transformationType": {"type": "string"},
                    },
                    "required": ["inputFields"],
                },
            },
            "dataset": {"type": "array", "items": INPUT_FIELD},
        },
        ["fields"],
        f"{FACETS}/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
    ),
    "dataQualityAssertions": facet(
        {
            "assertions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "assertion": {"type": "string"},
                        "success": {"type": "boolean"},
                        "column": {"type": "string"},
                        "severity": {"type": "string"},
                        "description": {"type": "string"},
                    },
                    "required": ["assertion", "success"],
                },
            }
        },
        ["assertions"],
        f"{FACETS}/1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet",
    ),
}

JOB_FACETS = {
    "ownership": facet({"owners": OWNERS}, [], f"{FACETS}/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet"),
    "sourceCodeLocation": facet(
        {
            "type": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "repoUrl": {"type": "string"},
            "path": {"type": "string"},
            "version": {"type": "string"},
        },
        ["type", "url"],
        f"{FACETS}/1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet",
    ),
}

RUN_FACETS = {
    "parent": facet(
        {
            "run": {
                "type": "object",
                "properties": {"runId": {"type": "string", "format": "uuid"}},
                "required": ["runId"],
            },
            "job": {
                "type": "object",
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
                "required": ["namespace", "name"],
            },
        },
        ["run", "job"],
        f"{FACETS}/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    ),
    "errorMessage": facet(
        {"message": {"type": "string"}, "programmingLanguage": {"type": "string"}},
        ["message", "programmingLanguage"],
        f"{FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    ),
}

OUTPUT_FACETS = {
    "outputStatistics": facet(
        {"rowCount": {"type": "integer"}, "size": {"type": "integer"}},
        [],
        f"{FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
    )
}


def _facets(known: dict[str, Any], base: str) -> dict[str, Any]:
    """Known facets by name, any other facet as a base facet."""
    return {"type": "object", "properties": known, "additionalProperties": {"$ref": f"#/$defs/{base}"}}


RUN_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "BaseFacet": BASE_FACET,
        "SchemaField": SCHEMA_FIELD,
        "Dataset": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": _facets(DATASET_FACETS, "BaseFacet"),
            },
            "required": ["namespace", "name"],
        },
    },
    "type": "object",
    "properties": {
        "eventType": {"type": "string", "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "run": {
            "type": "object",
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": _facets(RUN_FACETS, "BaseFacet")},
            "required": ["runId"],
        },
        "job": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": _facets(JOB_FACETS, "BaseFacet"),
            },
            "required": ["namespace", "name"],
        },
        "inputs": {"type": "array", "items": {"$ref": "#/$defs/Dataset"}},
        "outputs": {
            "type": "array",
            "items": {
                "allOf": [
                    {"$ref": "#/$defs/Dataset"},
                    {"type": "object", "properties": {"outputFacets": _facets(OUTPUT_FACETS, "BaseFacet")}},
                ]
            },
        },
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
    },
    "required": ["run", "job", "eventTime", "producer", "schemaURL"],
}


def validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(
        RUN_EVENT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
