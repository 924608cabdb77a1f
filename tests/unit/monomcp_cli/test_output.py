"""Tables at 80 columns: an id column keeps 32 characters only when it holds an id. An empty
one (a test delivery's approval_id) kept them and folded every other column to a few letters."""

from __future__ import annotations

import pytest

from monomcp_cli import output
from policy_service._generated.monomcp.policy.v1 import admin_pb2


def test_an_empty_id_column_leaves_its_room_to_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(output.console, "width", 80)
    record = admin_pb2.AuditRecord(call_id="c" * 32, method="tools/call", status="pending_approval", source="mcp")
    output.emit([record], False, ["call_id", "approval_id", "method", "source"])
    shown = capsys.readouterr().out
    assert "c" * 32 in shown  # the id present is whole
    assert "tools/call" in shown  # and the rest readable
