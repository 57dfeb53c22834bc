"""Benchmarks: what the platform costs against raw DuckDB. `python -m bench [--quick]`."""
