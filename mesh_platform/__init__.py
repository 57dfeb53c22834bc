"""The mesh platform: everything that runs in production, one package per responsibility.

From the bottom of the import graph up (`tests/test_import_graph.py` holds each package to the
rule its docstring states, and forbids import cycles and imports of `devtools`):

- `sql`: SQL text (quoted identifiers and literals, column types); beside it the module `text`
  (message wording: `one_line`, `counted`), which imports nothing of the platform;
- `descriptor`: what a domain declares (`domain.yaml`), parsed and validated;
- `project`: where a mesh lives (project folder, MESH_HOME, Dagster instance) and the loaded mesh;
- `sdk`: what a domain's Python code imports (`@product`, ingestion, shared reference data);
- `storage`: each domain's DuckDB warehouse and the store of published product versions;
- `governance`: masking, the governed read, the sandbox, code scan, audit log;
- `pg_warehouse`: the PostgreSQL warehouse and its governed views;
- `checks`: a product's contract as asset checks, run on the built table;
- `orchestration`: runs, run workers, sensors, automation, freshness, alerts;
- `defs`: a domain's Dagster definitions (Python and dbt assets, write-audit-publish);
- `lineage`: product and column lineage, OpenLineage events, the README's diagram;
- `contracts`: contract snapshots, changes, the consumer-aware gate, ODCS import and export;
- `catalog`: what users browse: the product catalog and quarantined records;
- `scaffold`: `mesh new-domain` / `mesh new-product` and the domain test workbench;
- `upstream`: every use of a library's private API, fenced;
- `cli`: the `mesh` command, the top of the graph.

`definitions.py` is the whole mesh as one code location (`dg`). Development tools (the seeder, the
appointment feed, UI screenshots, the README generator) live in the top-level `devtools` package.
"""
