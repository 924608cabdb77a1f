"""`full_row`: every column present, only columns, text made storable (ADR 0039 made it a
merge that touches only the values given; these pin what the comprehension it replaced did)."""

from __future__ import annotations

from enum import StrEnum

from policy_service.audit.sinks import COLUMNS
from policy_service.audit.writer import full_row, storable
from policy_service.storage.models import utcnow


class _Word(StrEnum):
    ALLOW = "allow"


def test_every_column_and_only_columns() -> None:
    at = utcnow()
    row = full_row({"call_id": "c1", "status": "started", "created_at": at, "not_a_column": "x", "seq": 7})
    assert list(row) == COLUMNS
    assert row["call_id"] == "c1" and row["status"] == "started"
    assert row["source"] == "mcp" and row["redacted_paths"] == "[]" and row["duration_ms"] == 0.0
    assert row["completed_at"] is None
    assert row["call_at"] == at  # a new row's partition key is its own time


def test_text_is_made_storable_as_storable_does() -> None:
    values = {"tool": "a\x00b", "error": "lone \ud800", "user_agent": "é", "decision": _Word.ALLOW, "duration_ms": 1.5}
    row = full_row(values)
    for name, value in values.items():
        assert row[name] == storable(value)
    assert row["tool"] == "a\\u0000b" and row["error"] == "lone \\ud800"
    assert row["decision"] is values["decision"]  # storable text is kept as it is
