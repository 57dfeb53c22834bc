"""Where the mesh relies on a library's internals: each case, why, what it gains, and its alarm.

Nothing else in the mesh imports an underscore module or name of Dagster, dagster-dbt, dbt or
Great Expectations, replaces a method or function of theirs, or rebuilds their objects by hand
(a test refuses it). Each case below names the upstream issue it works around, the gain measured
(so it can be weighed against its risk), and the test that fails when an upgrade changes the
behaviour it relies on; when that test fails, fix or delete the case, do not silence the test.

- `gx_duckdb`: Great Expectations' regex expectations on DuckDB. GX's
  `get_dialect_regex_expression` has no DuckDB operator (no GX issue asks for one; the native
  DuckDB execution engine proposed in GX PR #12084 would bring it), so `expect_column_values_to_
  match_regex` and its five relatives raise on DuckDB; the six GX metric modules that use the helper
  get one that answers DuckDB with `regexp_matches`. Gain: a product with a regex expectation keeps
  its checks in DuckDB instead of GX's pandas path: for a 10M-row patient_accounts-like product
  (its four expectations, one a regex, and the schema contract), GX in DuckDB took 9.1 s and 1.1 GB
  peak against 35.5 s and 7.7 GB for GX's pandas path, on 2 cores at a load average of 4-4.4 (23 s
  against 121 s at a load of 6-10; `docs/measure_gx_regex.py`). Alarm: `tests/test_upstream.py`
  (GX still lacks DuckDB regex; exactly these six modules import the helper, by name; its
  signature).

Not here, because a public route exists: GX's DuckDB cursor reset (GX issue #10738) is avoided
with SQLAlchemy's public `creator` hook (`checks.gx_duckdb.AutocommitConnection`), and
`tests/test_upstream.py` says when GX no longer needs it; dbt's specs come from dagster-dbt's
`@dbt_assets`, dbt runs through `dbtRunner` with the Manifest its own parse returned.
"""
