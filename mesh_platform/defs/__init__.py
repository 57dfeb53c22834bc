"""A domain's Dagster definitions: its Python (`python_assets`) and dbt (`dbt_assets`, `dbt_step`,
`dbt_build`) assets from one spec (`asset_spec`), write-audit-publish (`publish`), the warehouse
reads and writes around a step (`warehouse_io`) and the mesh as a resource (`mesh_resource`).

Must not import: `cli`, `catalog`, `scaffold`, `devtools`.
"""
