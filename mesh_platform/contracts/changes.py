"""The changes between two contracts of a product, each classified as breaking or not.

Breaking is what a consumer that relied on the old contract can trip on. Breaking (and what it
concerns, for the gate):

- column removed, column renamed (that column);
- type narrowed (bigint -> integer, double -> bigint, timestamp -> date) or changed to an unrelated
  type (that column);
- nullable: a blocking not-null expectation dropped or made `warn` (that column);
- expectation loosened: a blocking expectation dropped or made `warn`, a value set or range widened,
  `mostly` lowered, other arguments changed (its column, or the product if it names none);
- masking tightened or loosened: what a consumer sees of a column changes (pii or not, the policy,
  `pii_readers`) (that column, for the consumers whose view changed);
- access revoked (the product, for the consumers no longer granted);
- freshness loosened: a longer lag, or none (the product);
- product removed (the product).

Not breaking: type widened (integer -> bigint -> double, date -> timestamp), expectation tightened
(added, made blocking, a value set or range narrowed), column added, access granted, freshness
tightened, product added, a version change.

`warn` expectations guarantee nothing (the product is published anyway), so their changes are notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mesh_platform.contracts.snapshot import Snapshot, major_of
from mesh_platform.descriptor.model import DURATION_PATTERN, DURATION_UNITS
from mesh_platform.governance.masking import column_policy

# each type and the types that hold every value it holds (wider)
WIDER = {
    "integer": {"bigint", "double"},
    "bigint": {"double"},
    "date": {"timestamp"},
}
MASK_RANK = {None: 0, "zip3": 1, "year": 1, "token": 2, "redact": 3, "null": 4}
NOT_NULL = "expect_column_values_to_not_be_null"


@dataclass(frozen=True)
class Change:
    product: str
    kind: str
    breaking: bool
    detail: str
    column: str | None = None  # the column it touches (None: the product as a whole)
    consumers: tuple[str, ...] | None = None  # the consumer domains it concerns (None: every consumer)
    where: tuple[Any, ...] = ()  # what it is about in the descriptor: ("column", name), ("expectation", i), ...

    def as_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "kind": self.kind,
            "breaking": self.breaking,
            "column": self.column,
            "detail": self.detail,
            "consumers": list(self.consumers) if self.consumers is not None else None,
        }


def _seconds(duration: str | None) -> float:
    match = DURATION_PATTERN.match(duration) if duration else None
    return int(match.group(1)) * DURATION_UNITS[match.group(2)] if match else float("inf")


def _columns(snapshot: Snapshot | None) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in (snapshot or {}).get("columns", [])}


def _renames(base: Snapshot, head: Snapshot, removed: list[str], added: list[str]) -> dict[str, str]:
    """Removed columns that reappear under a new name: same type, and the same place or description."""
    old, new = _columns(base), _columns(head)
    base_pos = {c["name"]: i for i, c in enumerate(base["columns"])}
    head_pos = {c["name"]: i for i, c in enumerate(head["columns"])}
    renames: dict[str, str] = {}
    for name in removed:
        for candidate in added:
            if candidate in renames.values() or old[name]["type"] != new[candidate]["type"]:
                continue
            if base_pos[name] == head_pos[candidate] or old[name]["description"] == new[candidate]["description"]:
                renames[name] = candidate
                break
    return renames


def _type_change(product: str, name: str, before: str, after: str) -> Change:
    if after in WIDER.get(before, ()):
        return Change(product, "type_widened", False, f"{name}: {before} -> {after}", name, where=("column", name))
    kind = "type_narrowed" if before in WIDER.get(after, ()) else "type_changed"
    return Change(product, kind, True, f"{name}: {before} -> {after}", name, where=("column", name))


def _view(column: dict[str, Any], snapshot: Snapshot, consumer: str) -> str | None:
    """The masking policy `consumer` reads `column` through (None: raw values)."""
    if consumer in snapshot.get("pii_readers", []):
        return None
    return column_policy(column["classification"], column.get("mask"))


def _grants(snapshot: Snapshot, consumer: str) -> bool:
    return "*" in snapshot.get("consumers", []) or consumer in snapshot.get("consumers", [])


def _column_changes(base: Snapshot, head: Snapshot, consumers: Iterable[str]) -> list[Change]:
    product = head["product"]
    old, new = _columns(base), _columns(head)
    removed = [n for n in old if n not in new]
    added = [n for n in new if n not in old]
    renames = _renames(base, head, removed, added)
    changes = [
        Change(product, "column_renamed", True, f"{n} renamed to {renames[n]}", n, where=("column", renames[n]))
        if n in renames
        else Change(product, "column_removed", True, f"column {n} removed", n, where=("columns",))
        for n in removed
    ]
    changes += [
        Change(product, "column_added", False, f"column {n} added", n, where=("column", n))
        for n in added
        if n not in renames.values()
    ]
    for name in [n for n in old if n in new]:
        before, after = old[name], new[name]
        if before["type"] != after["type"]:
            changes.append(_type_change(product, name, before["type"], after["type"]))
        views: dict[tuple[str | None, str | None], list[str]] = {}
        for consumer in consumers:
            seen = (_view(before, base, consumer), _view(after, head, consumer))
            if seen[0] != seen[1]:
                views.setdefault(seen, []).append(consumer)
        for (was, now), who in sorted(views.items(), key=lambda kv: str(kv[0])):
            tighter = MASK_RANK.get(now, 2) > MASK_RANK.get(was, 2)
            detail = f"{name}: {was or 'raw values'} -> {now or 'raw values'} for {', '.join(who)}"
            kind = "masking_tightened" if tighter else "masking_loosened"
            changes.append(Change(product, kind, True, detail, name, tuple(who), ("column", name)))
        if before["classification"] != after["classification"] and not views:
            detail = f"{name}: classification {before['classification']} -> {after['classification']}"
            changes.append(Change(product, "classification_changed", False, detail, name, where=("column", name)))
    return changes


def _expectation_key(expectation: dict[str, Any]) -> tuple[str, str]:
    kwargs = expectation.get("kwargs", {})
    columns = [str(kwargs[k]) for k in ("column", "column_A", "column_B") if k in kwargs]
    columns += [str(c) for c in kwargs.get("column_list") or []]
    return expectation["type"], ",".join(columns)


def _compare_kwargs(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """'tightened', 'loosened', or None (the same) for two argument sets of one expectation."""
    verdicts = set()
    for key in sorted(set(before) | set(after)):
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        if key == "value_set" and isinstance(was, list) and isinstance(now, list):
            verdicts.add("tightened" if set(now) <= set(was) else "loosened")
        elif key == "min_value":
            verdicts.add("loosened" if now is None or (was is not None and now < was) else "tightened")
        elif key == "max_value":
            verdicts.add("loosened" if now is None or (was is not None and now > was) else "tightened")
        elif key == "mostly":
            verdicts.add(
                "loosened" if (now if now is not None else 1) < (was if was is not None else 1) else "tightened"
            )
        else:
            verdicts.add("loosened")  # another argument: the old guarantee may no longer hold
    if not verdicts:
        return None
    return "loosened" if "loosened" in verdicts else "tightened"


def _expectation_changes(base: Snapshot, head: Snapshot) -> list[Change]:
    product = head["product"]
    old = {_expectation_key(e): e for e in base.get("expectations", [])}
    new = {_expectation_key(e): (i, e) for i, e in enumerate(head.get("expectations", []))}
    changes = []
    for key in sorted(set(old) | set(new)):
        was = old.get(key)
        index, now = new.get(key, (None, None))
        column = key[1].split(",")[0] or None
        where: tuple[Any, ...] = ("expectation", index) if index is not None else ("expectations",)
        blocking_before = was is not None and was["severity"] == "error"
        blocking_after = now is not None and now["severity"] == "error"
        label = f"{key[0]}({key[1]})" if key[1] else key[0]
        if blocking_before and not blocking_after:
            gone = "dropped" if now is None else "made warn"
            if key[0] == NOT_NULL:
                detail = f"{column} may now be null (not-null expectation {gone})"
                changes.append(Change(product, "nullable", True, detail, column, where=where))
            else:
                changes.append(Change(product, "expectation_loosened", True, f"{label} {gone}", column, where=where))
        elif blocking_after and not blocking_before:
            kind = "not_null" if key[0] == NOT_NULL else "expectation_tightened"
            detail = f"{label} " + ("added" if was is None else "made blocking")
            changes.append(Change(product, kind, False, detail, column, where=where))
        elif was is not None and now is not None and was.get("kwargs") != now.get("kwargs"):
            verdict = _compare_kwargs(was.get("kwargs", {}), now.get("kwargs", {}))
            if verdict is not None:
                breaking = verdict == "loosened" and blocking_after
                detail = f"{label}: {was.get('kwargs')} -> {now.get('kwargs')}"
                changes.append(Change(product, f"expectation_{verdict}", breaking, detail, column, where=where))
        elif was is None or now is None:  # a warn expectation added or dropped
            detail = f"{label} ({'warn'}) {'added' if was is None else 'dropped'}"
            changes.append(Change(product, "expectation_note", False, detail, column, where=where))
    return changes


def _product_changes(base: Snapshot, head: Snapshot, consumers: Iterable[str]) -> list[Change]:
    product = head["product"]
    changes = []
    before, after = _seconds(base.get("freshness")), _seconds(head.get("freshness"))
    if after != before:
        detail = f"freshness {base.get('freshness') or 'none'} -> {head.get('freshness') or 'none'}"
        loosened = after > before
        kind = "freshness_loosened" if loosened else "freshness_tightened"
        changes.append(Change(product, kind, loosened, detail, where=("freshness",)))
    consumers = list(consumers)
    revoked = tuple(c for c in consumers if _grants(base, c) and not _grants(head, c))
    if revoked:
        detail = f"access revoked for {', '.join(revoked)}"
        changes.append(Change(product, "access_revoked", True, detail, consumers=revoked, where=("access",)))
    if set(head.get("consumers", [])) - set(base.get("consumers", [])):
        granted = sorted(set(head["consumers"]) - set(base.get("consumers", [])))
        changes.append(
            Change(product, "access_granted", False, f"access granted to {', '.join(granted)}", where=("access",))
        )
    if major_of(head.get("version")) != major_of(base.get("version")) or head.get("version") != base.get("version"):
        detail = f"version {base.get('version') or '(none)'} -> {head.get('version') or '(none)'}"
        changes.append(Change(product, "version_changed", False, detail, where=("version",)))
    return changes


def contract_changes(base: Snapshot | None, head: Snapshot | None, consumers: Iterable[str] = ()) -> list[Change]:
    """Every change from `base` to `head` (None: the product does not exist there). `consumers`: the
    domains that consume the product, for access and masking changes, which concern some of them."""
    if base is None and head is None:
        return []
    if base is None:
        assert head is not None
        return [Change(head["product"], "product_added", False, f"product {head['product']} added", where=("product",))]
    if head is None:
        return [Change(base["product"], "product_removed", True, f"product {base['product']} removed", where=())]
    consumers = list(consumers)
    return [
        *_column_changes(base, head, consumers),
        *_expectation_changes(base, head),
        *_product_changes(base, head, consumers),
    ]


def major_bumped(base: Snapshot | None, head: Snapshot | None) -> bool:
    return base is not None and head is not None and major_of(head.get("version")) > major_of(base.get("version"))
