"""Alerts for owners: a run failure, a blocking check failure, a freshness breach.

Every alert names the product (or asset) and its owner. It is appended to the JSON-lines log
`MESH_HOME/alerts/alerts.jsonl` and, when `MESH_ALERT_WEBHOOK` is set (read when the alert is sent,
never at import), POSTed there as JSON. A webhook that fails does not fail the run: the delivery
error is kept in the log next to the alert.
"""

from __future__ import annotations

import fcntl
import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

WEBHOOK_ENV = "MESH_ALERT_WEBHOOK"
AlertKind = Literal["run_failure", "check_failure", "freshness_breach"]


@dataclass
class Alert:
    kind: AlertKind
    domain: str
    asset: str
    owner: str
    message: str
    run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def ref(self) -> str:
        return f"{self.domain}.{self.asset}"


def alert_log(home: Path) -> Path:
    return home / "alerts" / "alerts.jsonl"


def _post(url: str, alert: Alert, record: dict[str, Any]) -> str | None:
    body = json.dumps(
        {"text": f"[{alert.kind}] {alert.ref} (owner {alert.owner}): {alert.message}", **record}, default=str
    )
    request = urllib.request.Request(
        url, data=body.encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        return None
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


def send_alert(home: Path, alert: Alert) -> dict[str, Any]:
    """Deliver `alert` to the log (always) and the webhook (when configured); returns the record."""
    record: dict[str, Any] = {**asdict(alert), "product": alert.ref}
    url = os.environ.get(WEBHOOK_ENV)
    if url:
        error = _post(url, alert, dict(record))
        record["webhook"] = {"url": url, "delivered": error is None, **({"error": error} if error else {})}
    path = alert_log(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as log:
        fcntl.flock(log, fcntl.LOCK_EX)  # whole lines, even with concurrent runs
        log.write(json.dumps(record, default=str) + "\n")
    return record


def read_alerts(home: Path) -> list[dict[str, Any]]:
    path = alert_log(home)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
