"""Orchestration: how and when the mesh runs.

Owns: runs of a domain (`domain_runs`) in warm run workers (`launcher`, `run_worker_server`),
what a run recorded (`run_report`), whether a run's process is alive (`process_health`), landing
sensors, cross-domain automation, freshness and alerts.

Must not import: `cli`, `defs`, `checks`, `contracts`, `catalog`, `governance`, `lineage`,
`pg_warehouse`, `scaffold`, `sdk`, `devtools`; a domain's definitions import orchestration's
policies, not the other way round.
"""
