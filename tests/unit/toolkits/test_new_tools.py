"""The permission a newly synced tool gets."""

from __future__ import annotations

import json

import pytest

from policy_service.toolkits.new_tools import new_tool_permission


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"readOnlyHint": True}, "always_allow"),
        ({"readOnlyHint": True, "destructiveHint": False}, "always_allow"),
        ({"readOnlyHint": True, "destructiveHint": True}, "needs_approval"),
        ({"readOnlyHint": False}, "needs_approval"),
        ({"destructiveHint": True}, "needs_approval"),
        ({"readOnlyHint": "true"}, "needs_approval"),
        ({}, "needs_approval"),
        (None, "needs_approval"),
    ],
)
def test_only_read_only_tools_are_allowed_outright(annotations: dict[str, object] | None, expected: str) -> None:
    assert new_tool_permission(json.dumps(annotations) if annotations is not None else "", "") == expected


def test_the_toolkit_default_applies_to_everything_else() -> None:
    assert new_tool_permission("", "blocked") == "blocked"
    assert new_tool_permission("not json", "always_allow") == "always_allow"
    assert new_tool_permission('{"readOnlyHint": true}', "blocked") == "always_allow"
