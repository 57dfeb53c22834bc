"""The audit log of every governance decision: `MESH_HOME/audit/reads.jsonl`, tamper-evident.

Each line is one decision (`event`):

- `read`: a consumer read a product version (masked columns, via what, in which run);
- `refused`: a read that the access agreements refuse (who, what, which rule);
- `raw_read`: an owner read its own pii unmasked (`mesh read`, `mesh quarantine`);
- `sandbox_refusal`: a domain step's SQL tried to reach what it may not (the target, whose it is,
  the agreement it would need).

Lines are chained: each carries `seq`, `prev` (the previous line's `hash`) and `hash`, an HMAC-SHA256
of the line's content and `prev` under the MESH_HOME's audit key (`audit.key`, mode 0600). Editing,
deleting, reordering or inserting a line breaks the chain at that line, and a line cannot be forged
without the key: `verify` names the first line that does not hold. Only platform code writes here;
a domain step's SQL cannot reach the folder or the key (its sandbox), while domain Python code runs
with its process's rights (see the README's governance section for what that means).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mesh_platform.project.locations import MeshHome

Event = Literal["read", "refused", "raw_read", "sandbox_refusal"]
GENESIS = "0" * 64
TAIL_BYTES = 1 << 16


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Broken:
    """The first line of the log that does not verify."""

    line: int
    reason: str


class AuditLog:
    def __init__(self, home: MeshHome):
        self.home = home
        self.path = home.audit_dir / "reads.jsonl"

    def _key(self) -> bytes:
        return self.home.secret("audit").encode()

    def _sign(self, record: dict[str, Any], key: bytes) -> str:
        return hmac.new(key, _canonical(record), hashlib.sha256).hexdigest()

    def _last(self, handle: Any) -> dict[str, Any] | None:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_BYTES))
        lines = handle.read().splitlines()
        for line in reversed(lines):
            if line.strip():
                try:
                    return json.loads(line)
                except ValueError:
                    return None
        return None

    def append(self, event: Event, **fields: Any) -> dict[str, Any]:
        """Record one decision; returns the record as written (without the chain fields)."""
        record = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
        key = self._key()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8", errors="replace") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # concurrent runs append one after another
            last = self._last(handle)
            chained = {
                **record,
                "seq": int(last.get("seq", 0)) + 1 if last else 1,
                "prev": str(last.get("hash", "")) if last else GENESIS,
            }
            chained["hash"] = self._sign(chained, key)
            handle.seek(0, os.SEEK_END)
            handle.write(json.dumps(chained, default=str) + "\n")
            handle.flush()
        return record

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        yield {"event": "unreadable", "raw": line[:200]}

    def verify(self) -> tuple[int, Broken | None]:
        """(lines that verify, the first broken line or None)."""
        if not self.path.exists():
            return 0, None
        key, prev, count = self._key(), GENESIS, 0
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    record = json.loads(raw)
                    claimed = record.pop("hash")
                except (ValueError, KeyError, AttributeError, TypeError):
                    return count, Broken(number, "not a signed audit record")
                if record.get("prev") != prev:
                    return count, Broken(number, "does not follow the line before it (a line was removed or moved)")
                if record.get("seq") != number:
                    return count, Broken(number, f"sequence {record.get('seq')} where {number} was expected")
                if not hmac.compare_digest(str(claimed), self._sign(record, key)):
                    return count, Broken(number, "its content does not match its signature (the line was edited)")
                prev, count = str(claimed), count + 1
        return count, None


def audit_read(home: MeshHome, event: Event, **fields: Any) -> dict[str, Any]:
    """Record a decision in MESH_HOME's audit log."""
    return AuditLog(home).append(event, **fields)


def log_path(home: MeshHome) -> Path:
    return AuditLog(home).path
