"""The permission a tool gets when it first appears in a toolkit's catalogue.

Why: a sync must not silently expose a new state-changing tool to every caller. Only a
tool its backend declares read-only (MCP `readOnlyHint: true`, not `destructiveHint`)
is allowed outright; anything else, unannotated tools included, gets the toolkit's
`new_tool_permission` (needs_approval unless its owner chose otherwise). Existing tools
keep whatever permission they have.
"""

from __future__ import annotations

import json

DEFAULT_NEW_TOOL_PERMISSION = "needs_approval"


def is_read_only(annotations_json: str) -> bool:
    try:
        annotations = json.loads(annotations_json) if annotations_json else {}
    except ValueError:
        return False
    return (
        isinstance(annotations, dict)
        and annotations.get("readOnlyHint") is True
        and annotations.get("destructiveHint") is not True
    )


def new_tool_permission(annotations_json: str, toolkit_default: str) -> str:
    """`always_allow` for a read-only tool, else the toolkit's default for new tools."""
    if is_read_only(annotations_json):
        return "always_allow"
    return toolkit_default or DEFAULT_NEW_TOOL_PERMISSION
