"""Self-serve scaffolding: `mesh new-domain` and `mesh new-product`.

Everything is validated first (names, owner, consumed products, clashes), then every file is
rendered in memory from the templates in `templates/` and checked (descriptor against the schema,
Python compiled, workspace parsed); only then is anything written, and a failure while writing or
preparing the dbt manifest restores what was there before.

Must not import: `cli`, `catalog`, `orchestration`, `devtools`.
"""
