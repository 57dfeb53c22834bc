"""The dbt-duckdb plugin that locks a domain's dbt connection into its step's sandbox.

dbt_projects/profiles.yml names this module in the DuckDB output's `plugins`, with the step's
sandbox (`SANDBOX_ENV`, see `mesh_platform.governance.sandbox`) as its config; dbt-duckdb calls
`configure_connection` on the connection it opens, before any model, test, macro or hook runs.
dbt run by hand outside the mesh (no sandbox in the environment) gets a plain connection, as the
person running it has the files anyway. DuckDB settings must not be set in the profile's
`settings` (dbt-duckdb sets those on every cursor, which the locked configuration refuses): the
sandbox sets the memory limit itself.

dbt-duckdb keeps its connection (and so the locked database instance) open after an invocation and
reuses it while its credentials are equal; the sandbox spec carries a nonce per invocation, so its
credentials change and every invocation gets a connection of its own, and `release()` closes the
connections of the last one, so the platform's own connection after the step is not the locked one.
The spec (with its nonce) reaches only the step's `dbt build`: dbt's parses render the profile with
fixed values and no sandbox (`mesh_platform.defs.dbt_project.parse_env`), open no connection, and so
keep dbt's partial parsing valid from one step to the next.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from mesh_platform.governance.sandbox import Sandbox

_opened: list[Any] = []


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        spec = plugin_config.get("sandbox") or ""
        self.sandbox = Sandbox.from_env(spec) if spec else None

    def configure_connection(self, conn: Any) -> None:
        if self.sandbox is not None:
            self.sandbox.apply(conn)
            _opened.append(conn)


def release() -> None:
    """Close the sandboxed connections dbt opened (after its invocation ended)."""
    while _opened:
        _opened.pop().close()
