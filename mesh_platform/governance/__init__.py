"""What a domain may see and do: masking (`masking`, the one owner of pii and its policies), the
governed read and its projections, the step sandbox (DuckDB and dbt), the code scan and bypass
warnings, refusals and the audit log.

Must not import: `cli`, `defs`, `checks`, `contracts`, `catalog`, `lineage`, `orchestration`,
`scaffold`, `sdk`, `upstream`, `devtools`; it governs what the layers above do.
"""
