"""Where data is kept: each domain's private DuckDB warehouse file (`duckdb_warehouse`) and the
product store of published, immutable product versions (`product_store`).

May import only: `project`, `descriptor`, `sql`, `text`; who may read what is governance's, above it.
"""
