"""DuckDB's memory limit for the mesh's connections, and its split between domains run at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh_platform.project.locations import MeshHome
from mesh_platform.storage.duckdb_warehouse import MEMORY_LIMIT_ENV, memory_limit, memory_limit_share, open_warehouse


def test_a_domain_warehouse_opens_with_the_configured_memory_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    with open_warehouse(MeshHome(tmp_path), "pharmacy") as con:
        limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "") in {"300.0MB", "286.1MiB"}  # DuckDB reports it in its own units


@pytest.mark.parametrize(
    ("limit", "parts", "share"),
    [("1GB", 2, "500MB"), ("2GiB", 2, "1073MB"), ("1.5GB", 3, "500MB"), ("100MB", 4, "64MB"), ("1GB", 1, "1000MB")],
)
def test_domains_run_at_once_split_the_memory_limit(limit: str, parts: int, share: str, monkeypatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, limit)
    assert memory_limit_share(parts) == share


def test_a_malformed_memory_limit_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MEMORY_LIMIT_ENV}='lots'.*'512MB'"):
        memory_limit()
