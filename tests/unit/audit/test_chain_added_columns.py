"""A column added after rows were digested must not change those rows' hashes."""

from __future__ import annotations

from policy_service.audit.chain import content_hash

ROW = {"call_id": "a" * 32, "status": "ok", "request_payload": "{}"}


def test_an_unset_trace_id_leaves_the_hash_of_an_older_row_unchanged() -> None:
    assert content_hash(ROW | {"trace_id": ""}) == content_hash(ROW)


def test_a_set_trace_id_is_covered_by_the_hash() -> None:
    traced = content_hash(ROW | {"trace_id": "f" * 32})
    assert traced != content_hash(ROW)
    assert traced != content_hash(ROW | {"trace_id": "e" * 32})
