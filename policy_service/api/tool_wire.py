"""ListTools' ToolInfo messages, kept per listing of a cached view: a 100,000-tool full
listing is built once per policy version and view, not per ListTools (0.38 s of CPU per
answer at that size; merging a built one costs ~0.04 s). ADR 0024.

Smaller listings (a ListTools page) reuse each tool's message while its ResolvedTool (kept
by the catalogue's caches until the policy version moves) is the same object: the front
reloads its 500-tool first page every cache TTL, and building 500 messages each time made
a call's policy CPU grow with the catalogue (docs/benchmarks-scale.md)."""

from __future__ import annotations

from policy_service._generated.monomcp.policy.v1 import policy_pb2, types_pb2
from policy_service.api import convert
from policy_service.permissions.catalogue import ResolvedTool

# Listings smaller than this are rebuilt every time (cheap); at most this many kept (each
# ~120 bytes per tool: a 100,000-tool listing holds ~12 MB).
_WORTH_KEEPING = 1000
_MAX_KEPT = 4
# ToolInfo messages kept per ResolvedTool for smaller listings (ten 500-tool pages).
_MAX_TOOLS_KEPT = 5_000


def tool_info(t: ResolvedTool) -> types_pb2.ToolInfo:
    return types_pb2.ToolInfo(
        name=t.name,
        title=t.title,
        description=t.description,
        input_schema_json=t.input_schema_json,
        output_schema_json=t.output_schema_json,
        annotations_json=t.annotations_json,
        permission=convert.PERMISSION_TO_PB[t.effective.permission],
        permission_source=t.effective.source,
        passthrough_json=t.passthrough_json,
    )


class ToolWire:
    def __init__(self) -> None:
        # id of a listing tuple -> (that tuple, kept alive so the id stays its own; its messages)
        self._built: dict[int, tuple[tuple[ResolvedTool, ...], policy_pb2.ListToolsResponse]] = {}
        # id of a ResolvedTool -> (that tool, kept alive so the id stays its own; its message)
        self._tools: dict[int, tuple[ResolvedTool, types_pb2.ToolInfo]] = {}

    def response(self, listed: tuple[ResolvedTool, ...]) -> policy_pb2.ListToolsResponse:
        """A new response holding `listed` as ToolInfo messages (the caller fills the rest)."""
        out = policy_pb2.ListToolsResponse()
        if len(listed) < _WORTH_KEEPING:
            out.tools.extend(self._info(t) for t in listed)
            return out
        hit = self._built.get(id(listed))
        if hit is None or hit[0] is not listed:
            hit = (listed, policy_pb2.ListToolsResponse(tools=[tool_info(t) for t in listed]))
            if len(self._built) >= _MAX_KEPT:
                self._built.clear()
            self._built[id(listed)] = hit
        out.MergeFrom(hit[1])
        return out

    def _info(self, tool: ResolvedTool) -> types_pb2.ToolInfo:
        hit = self._tools.get(id(tool))
        if hit is None or hit[0] is not tool:
            if len(self._tools) >= _MAX_TOOLS_KEPT:
                self._tools.clear()
            hit = self._tools[id(tool)] = (tool, tool_info(tool))
        return hit[1]
