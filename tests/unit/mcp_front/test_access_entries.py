"""The front's parsed tool entries are reused across access-cache reloads, never served stale."""

from __future__ import annotations

from mcp_front.access import _entry
from policy_service._generated.monomcp.policy.v1 import types_pb2

_SCHEMA = '{"type":"object","properties":{"q":{"type":"string"}}}'


def _tool(**changes: object) -> types_pb2.ToolInfo:
    fields: dict[str, object] = {
        "name": "search",
        "description": "Searches.",
        "input_schema_json": _SCHEMA,
        "permission": types_pb2.PERMISSION_ALWAYS_ALLOW,
    }
    return types_pb2.ToolInfo(**{**fields, **changes})


def test_an_unchanged_tool_is_parsed_once_across_reloads() -> None:
    assert _entry(_tool()) is _entry(_tool())


def test_a_changed_definition_is_served_as_changed() -> None:
    before = _entry(_tool())
    described = _entry(_tool(description="Searches the archive."))
    assert described.wire["description"] == "Searches the archive."
    schema = '{"type":"object","properties":{"q":{"type":"integer"}},"required":["q"]}'
    retyped = _entry(_tool(input_schema_json=schema))
    assert retyped.wire["inputSchema"]["required"] == ["q"]
    assert not retyped.validator.is_valid({"q": "text"}) and before.validator.is_valid({"q": "text"})
    approval = _entry(_tool(permission=types_pb2.PERMISSION_NEEDS_APPROVAL))
    assert approval.permission == "needs_approval" and before.permission == "always_allow"
    assert _entry(_tool()).wire["description"] == "Searches."
