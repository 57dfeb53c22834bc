"""Which variables of the environment count as secrets, and that a step's dbt cannot see them."""

from __future__ import annotations

import os

import pytest

from mesh_platform.project.environment_secrets import rendered_secrets, secret_names, without_secrets

ENVIRON = {
    "MESH_WAREHOUSE_URL": "postgresql://admin:pw@127.0.0.1:5432/postgres",
    "MESH_ALERT_WEBHOOK": "https://hooks.example.com/services/T0/B0/abcdef",
    "GITHUB_TOKEN": "ghp_0123456789",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
    "ANALYTICS_DB_URL": "mysql://reader:hunter22@db.example.com/x",
    "DBT_ENV_SECRET_MESH_PG_PASSWORD": "domain-password",  # dbt refuses it in models itself
    "MESH_DUCKDB_PATH": "/home/me/mesh/warehouse/patients.duckdb",
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/me",
    "DOCS_URL": "https://example.com/docs",  # a URL without a password
}


def test_secrets_are_known_by_name_or_by_a_url_with_a_password() -> None:
    assert secret_names(ENVIRON) == [
        "ANALYTICS_DB_URL",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "MESH_ALERT_WEBHOOK",
        "MESH_WAREHOUSE_URL",
    ]


def test_without_secrets_hides_them_and_puts_them_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_WAREHOUSE_URL", ENVIRON["MESH_WAREHOUSE_URL"])
    monkeypatch.setenv("DBT_ENV_SECRET_MESH_PG_PASSWORD", "domain-password")
    with without_secrets():
        assert "MESH_WAREHOUSE_URL" not in os.environ
        assert os.environ["DBT_ENV_SECRET_MESH_PG_PASSWORD"] == "domain-password"  # the profile reads it
    assert os.environ["MESH_WAREHOUSE_URL"] == ENVIRON["MESH_WAREHOUSE_URL"]


def test_a_rendered_secret_is_named_and_short_values_never_match() -> None:
    text = '{"meta": {"hook": "https://hooks.example.com/services/T0/B0/abcdef"}, "port": "5432"}'
    assert rendered_secrets(text, {**ENVIRON, "DB_PASSWORD": "5432"}) == ["MESH_ALERT_WEBHOOK"]
    assert rendered_secrets("select 1", ENVIRON) == []
