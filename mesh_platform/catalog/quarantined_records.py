"""Reading quarantined records back (kept per domain, per ingesting asset)."""

from __future__ import annotations

import json
from typing import Any

from mesh_platform.governance.audit import audit_read
from mesh_platform.governance.masking import masked_record, pii_columns
from mesh_platform.project.mesh import Mesh
from mesh_platform.storage.duckdb_warehouse import open_warehouse


def _pii_columns(mesh: Mesh, domain: str) -> set[str]:
    descriptor = mesh.descriptors.get(domain)
    return set(pii_columns(c for p in (descriptor.products if descriptor else []) for c in p.columns))


RAW_LINE = "line"  # the record of a line that was not split into values (`mesh_platform.sdk.ingest`)


def _mask(record: str, pii: set[str]) -> str:
    """Mask the record's pii fields; a raw line, whose pii cannot be told apart, is masked whole."""
    values = json.loads(record)
    if isinstance(values, dict):
        values = masked_record(values, pii | {RAW_LINE})
    return json.dumps(values)


def _upstream_assets(mesh: Mesh, ref: str) -> set[str]:
    """Names of the product's own-domain ancestors: the ingestions whose rejects it was spared."""
    import dagster as dg

    from mesh_platform.defs.domain_definitions import build_domain, definitions_from

    domain, product = ref.split(".", 1)
    graph = definitions_from([build_domain(mesh, domain)]).resolve_asset_graph()
    names, stack = set(), [dg.AssetKey([domain, product])]
    while stack:
        key = stack.pop()
        if not graph.has(key):
            continue
        for parent in graph.get(key).parent_keys:
            if parent.path[0] == domain and parent.path[-1] not in names:
                names.add(parent.path[-1])
                stack.append(parent)
    return names


def quarantined(mesh: Mesh, ref: str | None = None, reader: str | None = None) -> list[dict[str, Any]]:
    """Quarantined records; fields that are pii in the domain's products are masked unless the
    reader is the owning domain (quarantine holds raw source records)."""
    domains = mesh.project.domain_names()
    upstream: set[str] | None = None
    if ref:
        mesh.product(ref)  # KeyError if unknown
        domains = [ref.split(".", 1)[0]]
        upstream = _upstream_assets(mesh, ref)
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
            pii = _pii_columns(mesh, domain)
            raw = reader == domain and bool(pii)
            if raw:  # the owner reads its own pii unmasked: audited
                audit_read(
                    mesh.project.home,
                    "raw_read",
                    consumer=reader,
                    product=f"{domain} (quarantine)" if ref is None else ref,
                    masked_columns={},
                    pii_columns=sorted(pii),
                    run_id=None,
                    via="mesh quarantine",
                )
                pii = set()
            for asset, file, line, reason, record, run_id in cursor.fetchall():
                if upstream is not None and asset not in upstream:
                    continue
                record = _mask(record, pii) if pii else record
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
