"""Reading the before/after an admin action's row keeps (its response payload, see
api/admin_snapshots.py) for people: the console's diff table, `monomcp audit show`, and the
REST API's `change` field all come from here, so they agree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ABSENT = "—"


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: str
    after: str
    changed: bool


def change_of(method: str, response_json: str) -> dict[str, Any] | None:
    """`{"before": …, "after"?: …}` of an admin row, or None (a call, or no snapshot kept)."""
    if not method.startswith("admin/") or not response_json:
        return None
    try:
        value = json.loads(response_json)
    except ValueError:
        return None  # truncated by the size cap: shown as text instead
    return value if isinstance(value, dict) and "before" in value else None


def _text(value: Any) -> str:
    if value is None:
        return ABSENT
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def field_changes(change: dict[str, Any]) -> list[FieldChange]:
    """One line per field of the object, before and after; an action that did not finish
    (refused, failed) has no after: every field reads as unchanged."""
    before = change.get("before") or {}
    finished = "after" in change
    after = (change.get("after") or {}) if finished else before
    fields = list(dict.fromkeys([*before, *after]))
    lines = []
    for name in fields:
        old, new = _text(before.get(name)), _text(after.get(name))
        lines.append(FieldChange(name, old, new, old != new))
    if not fields:
        lines.append(FieldChange("(object)", ABSENT, ABSENT, False))
    return lines


def summary(change: dict[str, Any]) -> str:
    """`created`, `removed`, `changed: role, disabled`, `unchanged` or `not done (before only)`."""
    if change.get("after_unreadable"):
        return "done, but the object could not be read afterwards"
    if "after" not in change:
        return "not done (before only)"
    if change.get("before") is None and change.get("after") is not None:
        return "created"
    if change.get("after") is None and change.get("before") is not None:
        return "removed"
    changed = [c.field for c in field_changes(change) if c.changed]
    return f"changed: {', '.join(changed)}" if changed else "unchanged"
