"""Reading quarantined records back (kept per domain, per ingesting asset)."""

from __future__ import annotations

from typing import Any

from mesh_platform.mesh import Mesh
from mesh_platform.warehouse import open_warehouse


def quarantined(mesh: Mesh, ref: str | None = None) -> list[dict[str, Any]]:
    domains = mesh.project.domain_names()
    if ref:
        mesh.product(ref)  # KeyError if unknown
        domains = [ref.split(".", 1)[0]]
    records: list[dict[str, Any]] = []
    for domain in domains:
        if not mesh.project.home.warehouse(domain).exists():
            continue
        with open_warehouse(mesh.project.home, domain, read_only=True) as con:
            exists = con.execute(
                "select count(*) from information_schema.tables where table_schema = 'quarantine' "
                "and table_name = 'records'"
            ).fetchone()
            if not exists or not exists[0]:
                continue
            cursor = con.execute(
                "select asset, source_file, source_line, reason, cast(record as varchar), run_id "
                "from quarantine.records order by source_file, source_line"
            )
            for asset, file, line, reason, record, run_id in cursor.fetchall():
                records.append(
                    {
                        "domain": domain,
                        "asset": asset,
                        "source_file": file,
                        "source_line": line,
                        "reason": reason,
                        "record": record,
                        "run_id": run_id,
                    }
                )
    return records
