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
without the key: `verify` names the first line that does not hold. The log's end is signed too
(`audit/head.json`: the last line's `seq` and `hash`, with an HMAC), so lines cut from the end are
detected, and the next line is chained to that signed end, not to what is left of the file. Not
detected without a copy kept elsewhere: the log and its head both deleted, or both put back as
they were at an earlier time. Only platform code writes here;
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
HEAD_BYTES = 4096  # the signed end is one short JSON object: more is not one
HEAD_FIELDS = {"seq": int, "hash": str, "mac": str}


def _same(claimed: str, expected: str) -> bool:
    """Constant-time comparison of a claimed digest with the expected one: as bytes, since a str
    with non-ASCII characters (a forged line may hold anything) makes `compare_digest` raise."""
    return hmac.compare_digest(claimed.encode("utf-8", "surrogatepass"), expected.encode())


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

    @property
    def head_path(self) -> Path:
        return self.path.with_name("head.json")

    def _head_mac(self, seq: int, hashed: str, key: bytes) -> str:
        return hmac.new(key, f"head:{seq}:{hashed}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def _head(self, key: bytes) -> tuple[int, str] | Literal[False] | None:
        """The signed end (seq, hash); None when there is none, False when it does not verify."""
        try:
            with open(self.head_path, "rb") as handle:
                head = json.loads(handle.read(HEAD_BYTES))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError):  # a folder, not JSON, nested beyond parsing
            return False
        if not isinstance(head, dict) or not all(isinstance(head.get(k), t) for k, t in HEAD_FIELDS.items()):
            return False
        seq, hashed = head["seq"], head["hash"]
        return (seq, hashed) if _same(head["mac"], self._head_mac(seq, hashed, key)) else False

    def _write_head(self, seq: int, hashed: str, key: bytes) -> None:
        staged = self.head_path.with_name(f".head.{os.getpid()}.json")
        staged.write_text(json.dumps({"seq": seq, "hash": hashed, "mac": self._head_mac(seq, hashed, key)}) + "\n")
        os.replace(staged, self.head_path)

    def _last(self, handle: Any) -> dict[str, Any] | None:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_BYTES))
        lines = handle.read().splitlines()
        for line in reversed(lines):
            if line.strip():
                try:
                    last = json.loads(line)
                except (ValueError, RecursionError):
                    return None
                return last if isinstance(last, dict) else None
        return None

    def append(self, event: Event, **fields: Any) -> dict[str, Any]:
        """Record one decision; returns the record as written (without the chain fields)."""
        record = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
        key = self._key()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8", errors="replace") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # concurrent runs append one after another
            # chained to the signed end: lines cut from the file stay a gap that `verify` names
            head = self._head(key)
            if head:
                seq, prev = head[0] + 1, head[1]
            else:
                last = self._last(handle)
                seq = last["seq"] + 1 if last and isinstance(last.get("seq"), int) else 1
                prev = str(last.get("hash", "")) if last else GENESIS
            chained = {**record, "seq": seq, "prev": prev}
            chained["hash"] = self._sign(chained, key)
            new_log = handle.seek(0, os.SEEK_END) == 0
            handle.write(json.dumps(chained, default=str) + "\n")
            handle.flush()
            # a missing or forged end is evidence: it is never replaced by a valid one, which would
            # hide lines cut along with it (only a new log, or one whose end holds, gets a new end)
            if head or (head is None and new_log):
                self._write_head(seq, chained["hash"], key)
        return record

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    try:
                        record = json.loads(line)
                    except (ValueError, RecursionError):
                        record = None
                    yield record if isinstance(record, dict) else {"event": "unreadable", "raw": line[:200]}

    def verify(self) -> tuple[int, Broken | None]:
        """(lines that verify, the first broken line or None)."""
        if not self.path.exists() and not self.head_path.exists():
            return 0, None
        key = self._key()
        if not self.path.exists():
            return 0, Broken(1, f"the log is missing, but its signed end ({self.head_path.name}) says it had lines")
        with open(self.path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)  # an append writes its line and the head under LOCK_EX
            count, last, broken = self._verify_lines(handle, key)
            return count, broken or self._verify_end(count, last, key)

    def _verify_end(self, count: int, last: str, key: bytes) -> Broken | None:
        """The log ends where its signed end says: no line cut from the end, none added after it."""
        head = self._head(key)
        if head is None:
            return Broken(max(count, 1), f"the log's signed end ({self.head_path.name}) is missing") if count else None
        if head is False:
            return Broken(max(count, 1), f"the log's signed end ({self.head_path.name}) was edited or forged")
        if head[0] > count:
            return Broken(count + 1, f"lines {count + 1} to {head[0]} were removed from the end of the log")
        if head[0] < count:
            return Broken(head[0] + 1, f"the log goes on after its signed end (line {head[0]})")
        if not _same(head[1], last):
            return Broken(count, f"the last line is not the one its signed end ({self.head_path.name}) names")
        return None

    def _verify_lines(self, handle: Any, key: bytes) -> tuple[int, str, Broken | None]:
        """(lines that verify, the last one's hash, the first broken line or None)."""
        prev, count = GENESIS, 0
        for number, raw in enumerate(handle, start=1):
            try:
                record = json.loads(raw)
                claimed = record.pop("hash")
            except (ValueError, KeyError, AttributeError, TypeError, RecursionError):
                return count, prev, Broken(number, "not a signed audit record")
            if record.get("prev") != prev:
                return count, prev, Broken(number, "does not follow the line before it (a line was removed or moved)")
            if record.get("seq") != number:
                return count, prev, Broken(number, f"sequence {record.get('seq')} where {number} was expected")
            if not _same(str(claimed), self._sign(record, key)):
                return count, prev, Broken(number, "its content does not match its signature (the line was edited)")
            prev, count = str(claimed), count + 1
        return count, prev, None


def audit_read(home: MeshHome, event: Event, **fields: Any) -> dict[str, Any]:
    """Record a decision in MESH_HOME's audit log."""
    return AuditLog(home).append(event, **fields)


def log_path(home: MeshHome) -> Path:
    return AuditLog(home).path
