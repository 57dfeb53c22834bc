"""The secrets of the platform's environment, kept from what a domain's dbt project renders.

dbt's `env_var()` reads the process environment from any model, macro, hook or yml of a project,
and what it returns can land in a table the domain reads (`select '{{ env_var("X") }}'`) or in its
manifest (a `config(meta=...)`). The environment of a run worker holds the platform's secrets: the
warehouse's admin URL, the instance's database URL, the alert webhook, the lineage endpoint, and
whatever else the person who started the mesh had exported. So:

- a step's own dbt invocations (its parse and its build, in the run worker's main thread) run
  `without_secrets()`: the secret variables are out of the environment while dbt runs;
- the parses and compiles made elsewhere (definitions load, `mesh validate`, `mesh prepare`, in
  processes whose other threads read the environment) run in a child process started without them
  (`mesh_platform.defs.dbt_apart`): what they render (descriptions, meta, a parse error's message)
  reaches the Dagster UI, in whatever encoding the project chose (`| reverse`), which no scan of the
  text would recognise;
- a manifest that still holds a secret's value (`dbt parse` run by hand with the secrets exported)
  is refused (`rendered_secrets`); the lineage compile's output is only ever written by its child.

dbt's own secret variables (`DBT_ENV_SECRET_...`, which the profile reads and dbt refuses anywhere
but profiles.yml and packages.yml) stay: dbt enforces their rule itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

PLATFORM_SECRETS = ("MESH_WAREHOUSE_URL", "MESH_PG_URL", "MESH_ALERT_WEBHOOK", "OPENLINEAGE_URL")
DBT_SECRET_PREFIX = "DBT_ENV_SECRET_"
# names people give secrets, and URLs that carry a password (`scheme://user:password@host`)
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY", re.I)
_URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.I)
MIN_VALUE_LENGTH = 8  # shorter values (a port, "true") are no secret and would match anywhere


def secret_names(environ: Mapping[str, str]) -> list[str]:
    """The variables of `environ` that hold a secret, by name or by value."""
    return sorted(
        name
        for name, value in environ.items()
        if not name.startswith(DBT_SECRET_PREFIX)
        and (name in PLATFORM_SECRETS or _SECRET_NAME.search(name) or _URL_WITH_PASSWORD.match(value.strip()))
    )


@contextmanager
def without_secrets() -> Iterator[None]:
    """The secret variables out of this process's environment until the block ends. Only for a
    process whose other threads do not read the environment meanwhile (a run worker's step)."""
    removed = {name: os.environ.pop(name) for name in secret_names(os.environ)}
    try:
        yield
    finally:
        os.environ.update(removed)


def rendered_secrets(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret variables whose value appears in `text`."""
    environ = os.environ if environ is None else environ
    return [
        name
        for name in secret_names(environ)
        if len(value := environ[name].strip()) >= MIN_VALUE_LENGTH and value in text
    ]
