"""A product's contract as Dagster asset checks (`asset_checks`), run on its freshly built,
unpublished table (`evaluate`: schema contract and Great Expectations in DuckDB via
`gx_sql_engine`), and the descriptor expectations GX refuses, found before any run
(`validate_expectations`).

Must not import: `cli`, `defs`, `contracts`, `catalog`, `lineage`, `orchestration`, `scaffold`,
`storage`, `pg_warehouse`, `devtools`; checks run on a connection they are given.
"""
