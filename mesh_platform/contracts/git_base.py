"""Descriptors as they were at a git revision, read with the same safe loader as the working tree."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mesh_platform.contracts.snapshot import Snapshot, contract_snapshot
from mesh_platform.descriptor.load import DESCRIPTOR_FILE, read_descriptor
from mesh_platform.descriptor.problems import Problem


class BaseRevisionError(Exception):
    """The base to compare with cannot be read (not a git checkout, an unknown revision)."""


@dataclass
class BaseContracts:
    revision: str  # the commit compared with
    label: str  # as the user named it
    snapshots: dict[str, Snapshot]  # product ref -> contract
    problems: list[Problem]  # descriptors at the base that cannot be read (their domain is not compared)


def _git(root: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=60)
    except FileNotFoundError as exc:
        raise BaseRevisionError("git is not installed") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise BaseRevisionError(message[-1] if message else f"git {' '.join(args)} failed")
    return proc.stdout.decode(errors="replace").strip()


def resolve_base(root: Path, base: str | None) -> tuple[str, str]:
    """(commit, label) of `base`, by default the merge base of HEAD with `main`."""
    try:
        _git(root, "rev-parse", "--show-toplevel")
    except BaseRevisionError as exc:
        raise BaseRevisionError(f"{root} is not a git checkout, so there is no base to compare with ({exc})") from None
    if base is None:
        try:
            return _git(root, "merge-base", "HEAD", "main"), "the merge base with main"
        except BaseRevisionError as exc:
            raise BaseRevisionError(f"no merge base of HEAD with main ({exc}); name one with --base REV") from None
    if base.startswith("-"):
        raise BaseRevisionError(f"--base {base!r} is not a revision")
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}"), base
    except BaseRevisionError:
        raise BaseRevisionError(f"--base {base!r} is not a known revision of this repository") from None


def base_contracts(root: Path, base: str | None) -> BaseContracts:
    commit, label = resolve_base(root, base)
    prefix = _git(root, "rev-parse", "--show-prefix")
    listing = _git(root, "ls-tree", "-r", "--name-only", commit, "--", f"{prefix}domains")
    snapshots: dict[str, Snapshot] = {}
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory(prefix="mesh-base-") as scratch:
        for path in listing.splitlines():
            rel = path[len(prefix) :]
            parts = Path(rel).parts
            if len(parts) != 3 or parts[2] != DESCRIPTOR_FILE:
                continue
            target = Path(scratch) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, check=True)
            target.write_bytes(data.stdout)
            loaded = read_descriptor(target, rel)
            if loaded.descriptor is None or loaded.problems:
                problems += loaded.problems
                continue
            for product in loaded.descriptor.products:
                snapshots[f"{loaded.descriptor.domain}.{product.name}"] = contract_snapshot(loaded.descriptor, product)
    return BaseContracts(commit, label, snapshots, problems)
