"""ListTools pages reuse each tool's message while the catalogue's cached tool stands, and
every response is its own: one caller's answer never shows another's or a stale tool."""

from __future__ import annotations

import dataclasses

from policy_service.api.tool_wire import ToolWire
from policy_service.permissions.catalogue import ResolvedTool
from policy_service.permissions.resolver import Effective


def _tool(name: str, description: str = "Does a thing.") -> ResolvedTool:
    return ResolvedTool(
        name=name,
        title="",
        description=description,
        input_schema_json='{"type":"object"}',
        output_schema_json="",
        annotations_json="",
        effective=Effective("always_allow", "tool_default"),
    )


def test_a_page_is_answered_alike_each_time_and_each_answer_is_independent() -> None:
    wire = ToolWire()
    page = tuple(_tool(f"tool_{i}") for i in range(3))
    first = wire.response(page)
    first.tools[0].description = "changed by the first caller"
    second = wire.response(page)
    assert [t.name for t in second.tools] == ["tool_0", "tool_1", "tool_2"]
    assert second.tools[0].description == "Does a thing."


def test_a_tool_reloaded_with_a_new_definition_is_listed_as_changed() -> None:
    wire = ToolWire()
    old = _tool("search")
    assert wire.response((old,)).tools[0].description == "Does a thing."
    new = dataclasses.replace(old, description="Searches the archive.")
    blocked = dataclasses.replace(old, effective=Effective("needs_approval", "role_override"))
    assert wire.response((new,)).tools[0].description == "Searches the archive."
    assert wire.response((blocked,)).tools[0].permission_source == "role_override"
    assert wire.response((old,)).tools[0].description == "Does a thing."
