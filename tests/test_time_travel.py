"""Time travel: every published version stays readable by id and by time through the governed read
(`mesh read --at`), `mesh versions` lists them, and `retention` prunes old ones but never the current.

Products are published the way a run publishes them (`audit_and_publish`: the contract's checks on
the build, then the store) into a real MESH_HOME; reads go through the `mesh` command line."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mesh_platform.defs.publish import audit_and_publish
from mesh_platform.governance.audit import AuditLog
from mesh_platform.governance.masking import literal, quote
from mesh_platform.project.locations import MeshHome, MeshProject
from mesh_platform.project.mesh import Mesh
from mesh_platform.sql.syntax import sql_type
from mesh_platform.storage.product_store import (
    Build,
    ProductStore,
    Published,
    VersionNotFound,
    build_into,
    point_view,
    staged_file,
    staging,
)
from tests.conftest import E2E_SCALE, copy_project, materialize, mesh_env, run_mesh_cli

ACCOUNTS = "patients.patient_accounts"
OLD_ROWS = [{"patient_id": "P1", "first_name": "Ada", "email": "ada@example.com", "age_band": "18-49"}]
NEW_ROWS = [
    {"patient_id": "P2", "first_name": "Alan", "email": "alan@example.com", "age_band": "50-64"},
    {"patient_id": "P3", "first_name": "Grace", "email": "grace@example.com", "age_band": "65+"},
]


def publish(root: Path, home: Path, ref: str, rows: Sequence[Mapping[str, Any]], run_id: str) -> Published:
    """Publish `rows` as a run of the producer does: built into the staged file, audited, published."""
    mesh = Mesh.load(MeshProject(root, MeshHome(home)))
    producer, product = mesh.product(ref)
    selects = [
        ", ".join(
            f"cast({literal(str(row[c.name])) if row.get(c.name) is not None else 'null'} as {sql_type(c.type)}) "
            f"as {quote(c.name)}"
            for c in product.columns
        )
        for row in rows
    ]
    with staging(mesh.project.home, producer.domain, run_id) as folder, duckdb.connect() as con:
        path = staged_file(folder, product.name)
        build_into(con, " union all ".join(f"select {s}" for s in selects), path)
        relation = point_view(con, product.name, path)
        audit = audit_and_publish(con, mesh, producer, product, Build(relation, path), run_id)
    assert audit.published is not None, audit.blockers
    return audit.published


def mesh(root: Path, home: Path, *args: str) -> Any:
    return run_mesh_cli(*args, env=mesh_env(root, home), cwd=root)


def read_json(root: Path, home: Path, *args: str) -> list[dict[str, Any]]:
    proc = mesh(root, home, "read", ACCOUNTS, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one_line_error(proc: Any, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not proc.stdout
    return lines[0]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Published, Published, datetime]:
    """patient_accounts published twice with different rows: (project, home, old, new, a time between)."""
    base = tmp_path_factory.mktemp("time_travel")
    root, home = copy_project(base / "project"), base / "home"
    old = publish(root, home, ACCOUNTS, OLD_ROWS, "run-one-0001")
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    new = publish(root, home, ACCOUNTS, NEW_ROWS, "run-two-0002")
    return root, home, old, new, between


def test_read_at_returns_what_was_current_then_by_id_and_by_time(published: Any) -> None:
    root, home, old, new, between = published
    by_id = read_json(root, home, "--as", "patient_360", "--at", old.version)
    assert [r["patient_id"] for r in by_id] == ["P1"]
    assert by_id[0]["first_name"] == "[redacted]" and by_id[0]["email"].startswith("tok_")  # masked as today
    assert read_json(root, home, "--as", "patient_360", "--at", between.isoformat()) == by_id
    naive_utc = between.replace(tzinfo=None).isoformat()  # a time without a zone is UTC
    assert read_json(root, home, "--as", "patient_360", "--at", naive_utc) == by_id
    now = read_json(root, home, "--as", "patient_360", "--at", datetime.now(UTC).isoformat())
    assert [r["patient_id"] for r in now] == ["P2", "P3"]
    assert read_json(root, home, "--as", "patient_360", "--at", new.version) == now
    assert read_json(root, home, "--as", "patient_360") == now  # without --at: the current version
    owner = read_json(root, home, "--as", "patients", "--at", old.version)
    assert owner[0]["email"] == "ada@example.com"  # the owner sees its own pii in an old version too

    reads = [r for r in AuditLog(MeshHome(home)).records() if r.get("via") == "mesh read"]
    assert reads[0]["event"] == "read" and reads[0]["version"] == old.version and reads[0]["as_of"] == old.version
    assert reads[1]["version"] == old.version and reads[1]["as_of"] == between.isoformat()
    assert reads[-1]["event"] == "raw_read" and reads[-1]["version"] == old.version


def test_versions_lists_newest_first_marking_the_current_with_run_and_checks(published: Any) -> None:
    root, home, old, new, _ = published
    proc = mesh(root, home, "versions", ACCOUNTS, "--json")
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert [v["version"] for v in listing["versions"]] == [new.version, old.version]
    assert [v["current"] for v in listing["versions"]] == [True, False]
    assert [v["rows"] for v in listing["versions"]] == [2, 1]
    assert [v["run_id"] for v in listing["versions"]] == ["run-two-0002", "run-one-0001"]
    latest = listing["versions"][0]
    names = [c["name"] for c in latest["check_results"]]
    assert names[:3] == [
        "schema_contract",
        "column_values_to_not_be_null__patient_id",
        "column_values_to_be_unique__patient_id",
    ]
    assert latest["checks"] == {"passed": 5, "failed": 0, "not_run": 0}
    assert (listing["retention"], listing["pruned"]) == (None, 0)

    proc = run_mesh_cli("versions", ACCOUNTS, env={**mesh_env(root, home), "COLUMNS": "120"}, cwd=root)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    (new_line,) = [line for line in lines if new.version in line]
    (old_line,) = [line for line in lines if old.version in line]
    assert "current" in new_line and "current" not in old_line
    assert "run-two-0002" in new_line and "5✔ 0✘" in new_line
    assert lines.index(new_line) < lines.index(old_line)


def test_a_time_before_the_first_version_an_unknown_id_or_a_malformed_value_is_one_line(published: Any) -> None:
    root, home, old, _, _ = published
    before = one_line_error(mesh(root, home, "read", ACCOUNTS, "--as", "patient_360", "--at", "2001-01-01"), 2)
    assert "before the first version" in before and "2001-01-01" in before
    unknown = old.version[:-4] + "zzzz"
    assert unknown in one_line_error(mesh(root, home, "read", ACCOUNTS, "--as", "patient_360", "--at", unknown), 2)
    for bad in ("[/]", "yesterday", "2026-13-01", ""):
        line = one_line_error(mesh(root, home, "read", ACCOUNTS, "--as", "patient_360", "--at", bad), 2)
        assert "--at" in line and repr(bad) in line


def test_a_non_consumer_asking_for_an_old_version_gets_nothing_and_is_audited(published: Any) -> None:
    root, home, old, _, _ = published
    for at in (old.version, old.published_at, old.version[:-4] + "zzzz"):  # an unknown id reveals nothing either
        line = one_line_error(mesh(root, home, "read", ACCOUNTS, "--as", "immunizations", "--at", at), 1)
        assert "immunizations does not consume patients.patient_accounts" in line
    refused = [r for r in AuditLog(MeshHome(home)).records() if r["event"] == "refused"]
    assert [(r["consumer"], r["product"], r["rule"]) for r in refused[-3:]] == [
        ("immunizations", ACCOUNTS, "read-through-consumes")
    ] * 3
    assert not [
        r for r in AuditLog(MeshHome(home)).records() if r.get("consumer") == "immunizations" and "version" in r
    ]


def test_a_column_masked_now_is_masked_in_a_version_published_before_the_policy(tmp_path: Path) -> None:
    root, home = copy_project(tmp_path / "project"), tmp_path / "home"
    descriptor = root / "domains/patients/domain.yaml"
    masked = "{name: email, type: string, description: Contact email, classification: pii, mask: token}"
    text = descriptor.read_text()
    assert masked in text
    descriptor.write_text(text.replace(masked, "{name: email, type: string, description: Contact email, "
                                               "classification: internal}"))  # fmt: skip
    old = publish(root, home, ACCOUNTS, OLD_ROWS, "run-before-policy")
    assert read_json(root, home, "--as", "patient_360", "--at", old.version)[0]["email"] == "ada@example.com"
    descriptor.write_text(text)  # the policy now masks email
    publish(root, home, ACCOUNTS, NEW_ROWS, "run-after-policy")
    for at in (old.version, old.published_at):
        (row,) = read_json(root, home, "--as", "patient_360", "--at", at)
        # a token is lowercase hex: it may contain "ada", never the address or the name
        dumped = json.dumps(row)
        assert row["patient_id"] == "P1" and row["email"].startswith("tok_")
        assert "ada@" not in dumped and "Ada" not in dumped
    audited = [r for r in AuditLog(MeshHome(home)).records() if r.get("via") == "mesh read"][-1]
    assert audited["version"] == old.version and audited["masked_columns"]["email"] == "token"


def test_retention_prunes_old_versions_and_keeps_the_current(tmp_path: Path) -> None:
    """The store's pruning with a one-second retention (the descriptor's shortest is a minute)."""
    root, home = copy_project(tmp_path / "project"), tmp_path / "home"
    store = ProductStore(MeshHome(home))
    pinned_major = publish_file(store, home, "patient_accounts@1", retention_seconds=1)  # another store folder
    first, second = (publish_file(store, home, "patient_accounts", retention_seconds=1) for _ in range(2))
    between = datetime.fromisoformat(second.published_at)
    time.sleep(1.1)
    third = publish_file(store, home, "patient_accounts", retention_seconds=1)
    index = store.versions("patients", "patient_accounts")
    assert [v.version for v in index.versions] == [third.version]
    assert (index.pruned, index.first_published_at) == (2, first.published_at)
    assert not Path(first.path).exists() and not Path(second.path).exists() and Path(third.path).exists()
    assert store.current("patients", "patient_accounts").version == third.version  # type: ignore[union-attr]
    with pytest.raises(VersionNotFound, match="pruned"):
        store.resolve("patients", "patient_accounts", first.version)
    with pytest.raises(VersionNotFound, match="has been pruned"):
        store.resolve("patients", "patient_accounts", between)
    assert store.resolve("patients", "patient_accounts", datetime.now(UTC)).version == third.version
    # the current version of another folder (an older major a consumer pins) is never pruned
    time.sleep(1.1)
    publish_file(store, home, "patient_accounts", retention_seconds=1)
    assert [v.version for v in store.versions("patients", "patient_accounts@1").versions] == [pinned_major.version]
    assert Path(pinned_major.path).exists()
    # `mesh versions` lists the one left, current
    listing = json.loads(mesh(root, home, "versions", ACCOUNTS, "--json").stdout)
    assert listing["pruned"] == 3 and [v["current"] for v in listing["versions"]] == [True]


def publish_file(
    store: ProductStore, home: Path, name: str, retention_seconds: int | None, run_id: str = "store-test"
) -> Published:
    with staging(MeshHome(home), "patients", run_id) as folder, duckdb.connect() as con:
        path = staged_file(folder, name)
        build_into(con, "select 'P1' as patient_id", path)
        return store.publish(con, "patients", name, Build("x", path), run_id, retention_seconds=retention_seconds)


def test_runs_publishing_one_product_at_once_lose_no_version_they_keep(tmp_path: Path) -> None:
    store = ProductStore(MeshHome(tmp_path / "home"))
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda i: publish_file(store, tmp_path / "home", "p", None, f"run{i:05d}"), range(12)))
    index = store.versions("patients", "p")
    newest = sorted(done, key=lambda p: p.version)[-5:]
    assert [v.version for v in index.versions] == [p.version for p in newest] and index.pruned == 7
    assert store.current("patients", "p").version == newest[-1].version  # type: ignore[union-attr]
    assert sorted(f.name for f in Path(newest[0].path).parent.glob("*.parquet")) == [Path(p.path).name for p in newest]


def test_retention_in_the_descriptor_keeps_versions_without_it_the_last_five(tmp_path: Path) -> None:
    root, home = copy_project(tmp_path / "project"), tmp_path / "home"
    descriptor = root / "domains/patients/domain.yaml"
    descriptor.write_text(descriptor.read_text().replace("freshness: 26h\n", "freshness: 26h\n    retention: 30d\n", 1))
    kept = [publish(root, home, ACCOUNTS, OLD_ROWS, f"run-{i}") for i in range(7)]
    consent = [
        publish(root, home, "patients.patient_consent", [{"patient_id": "P1", "consent_research": True}], f"run-{i}")
        for i in range(7)
    ]
    listing = json.loads(mesh(root, home, "versions", ACCOUNTS, "--json").stdout)
    assert listing["retention"] == "30d"
    assert [v["version"] for v in listing["versions"]] == [p.version for p in reversed(kept)]
    store = ProductStore(MeshHome(home))
    index = store.versions("patients", "patient_consent")
    assert [v.version for v in index.versions] == [p.version for p in consent[2:]] and index.pruned == 2
    assert sorted(p.name for p in Path(consent[0].path).parent.glob("*.parquet")) == [
        Path(p.path).name for p in consent[2:]
    ]
    # a store written before the index: its versions are listed from their files, the current one in full
    (Path(consent[0].path).parent / "versions.json").unlink()
    legacy = store.versions("patients", "patient_consent")
    assert [v.version for v in legacy.versions] == [p.version for p in consent[2:]]
    assert [v.rows for v in legacy.versions] == [1] * 5 and legacy.versions[-1].checks == consent[-1].checks
    assert store.resolve("patients", "patient_consent", consent[3].version).path == consent[3].path


@pytest.mark.slow
def test_read_at_after_a_rerun_on_new_source_data_end_to_end(tmp_path: Path) -> None:
    """`mesh run` publishes, the sources change, `mesh run` publishes again: `--at` reads the first
    run's rows, by id and by time, and `mesh versions` lists both runs with their checks."""
    mm = materialize(tmp_path)
    assert mm.run.returncode == 0, mm.run.stderr  # type: ignore[attr-defined]
    (first,) = json.loads(mm.mesh("versions", ACCOUNTS, "--json", check=True).stdout)["versions"]
    before = json.loads(mm.mesh("read", ACCOUNTS, "--as", "patient_360", "--limit", "0", "--json", check=True).stdout)
    between = datetime.now(UTC).isoformat()
    mm.mesh("seed", "--scale", E2E_SCALE, "--seed", "7", check=True)
    mm.mesh("run", "--domain", "patients", check=True)

    listing = json.loads(mm.mesh("versions", ACCOUNTS, "--json", check=True).stdout)["versions"]
    assert [v["version"] for v in listing[1:]] == [first["version"]] and listing[0]["current"]
    assert listing[0]["run_id"] != first["run_id"] and listing[0]["checks"]["passed"] >= 5
    after = json.loads(mm.mesh("read", ACCOUNTS, "--as", "patient_360", "--limit", "0", "--json", check=True).stdout)
    assert after != before
    for at in (first["version"], between):
        proc = mm.mesh("read", ACCOUNTS, "--as", "patient_360", "--limit", "0", "--json", "--at", at, check=True)
        assert json.loads(proc.stdout) == before
