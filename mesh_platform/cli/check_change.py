"""`mesh check-change`: contract changes against a git revision that break a consumer's use (exit 1)."""

from __future__ import annotations

import typer

from mesh_platform.cli.common import EXIT_FAILED, err, invalid, load_mesh, out, plain, print_json, warn_left_out


def check_change(
    base: str = typer.Option(None, "--base", help="Git revision to compare with (default: the merge base with main)."),
    as_json: bool = typer.Option(False, "--json", help="The changes and decisions as a JSON document."),
) -> None:
    """Compare every product's contract with the base: a breaking change that a consumer uses fails (exit 1)."""
    from mesh_platform.contracts.gate import REFUSED, findings, head_snapshots, union_schema
    from mesh_platform.contracts.git_base import BaseRevisionError, base_contracts
    from mesh_platform.lineage.columns import mesh_columns

    mesh = load_mesh()
    try:
        compared = base_contracts(mesh.project.root, base)
    except BaseRevisionError as exc:
        invalid(str(exc))
    warn_left_out(mesh)
    # a domain that cannot be read on either side is not compared (its products are not "removed")
    skipped = {p.domain for p in compared.problems} | (set(mesh.project.domain_names()) - set(mesh.descriptors))
    base_snaps = {k: v for k, v in compared.snapshots.items() if k.split(".")[0] not in skipped}
    head = {k: v for k, v in head_snapshots(mesh).items() if k.split(".")[0] not in skipped}
    files = {d: f for d, f in mesh.files.items()}

    def file_of(domain: str) -> str:
        return files.get(domain, f"domains/{domain}/domain.yaml")

    found = findings(mesh, base_snaps, head, lambda: mesh_columns(mesh, union_schema(mesh, base_snaps)), file_of)
    refused = [f for f in found if f.decision == REFUSED]
    if as_json:
        print_json(
            {
                "base": {"revision": compared.revision, "named": compared.label},
                "passed": not refused,
                "changes": [f.as_dict() for f in found],
                "not_compared": sorted(skipped),
            }
        )
    else:
        for domain in sorted({p.domain for p in compared.problems if p.domain}):
            err.print(plain(f"warning: {domain} is not compared: its descriptor at the base has problems"))
        for finding in found:
            prefix = "✘ " if finding.decision == REFUSED else ("note: " if finding.change.breaking else "  ")
            out.print(plain(prefix + finding.message()), soft_wrap=True)
        summary = f"{len(found)} change(s) against {compared.label} ({compared.revision[:12]}), {len(refused)} refused"
        err.print(plain(("✘ " if refused else "✔ ") + summary))
    if refused:
        raise SystemExit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("check-change")(check_change)
