"""ListTools pages: opaque tokens naming the last tool listed, so a page survives catalogue
changes, and a page is read from the catalogue by name range (Catalogue.run_after) rather
than cut from the whole catalogue: the first page after a write costs the same at 10 tools
and at 100,000 (ADR 0024)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable

from policy_service.errors import InvalidArgument
from policy_service.permissions.catalogue import ResolvedTool, ToolkitView, with_tools

MAX_PAGE_SIZE = 1000

# A run of the catalogue after a name, `limit` tools long (blocked ones included), as the caller sees it.
RunLoader = Callable[[str, int], Awaitable[ToolkitView]]


async def read_page(load_run: RunLoader, size: int, token: str) -> tuple[ToolkitView, tuple[ResolvedTool, ...], str]:
    """The first view read, one page of the tools the caller may list after `token`, and the
    next token ('' on the last page). Reads runs of `size + 1` tools until the page is full
    (blocked tools are skipped) or the catalogue ends."""
    size = min(size, MAX_PAGE_SIZE)
    after = _after(token) if token else ""
    first: ToolkitView | None = None
    listed: list[ResolvedTool] = []
    while True:
        run = await load_run(after, size + 1)
        first = first or run
        listed += run.listed
        if len(listed) > size or len(run.tools) <= size:
            break
        after = next(reversed(run.tools))
    chunk = tuple(listed[:size])
    return first, chunk, _token(chunk[-1].name) if len(listed) > size and chunk else ""


# More names than this in one ListTools are answered from the whole view.
MAX_NAMED_LOOKUPS = 64

# The toolkit as the caller sees it, holding (at least) the tool of that name when it exists.
ToolLoader = Callable[[str], Awaitable[ToolkitView]]


async def read_named(load_tool: ToolLoader, names: list[str]) -> ToolkitView:
    """The toolkit holding just the named tools that exist, each read by its indexed lookup
    (Catalogue.view_of_tool), so asking for one tool of 100,000 never loads the catalogue."""
    found: dict[str, ResolvedTool] = {}
    first: ToolkitView | None = None
    for name in names:
        view = await load_tool(name)
        first = first or view
        tool = view.tools.get(name)
        if tool is not None:
            found[name] = tool
    if first is None:
        raise ValueError("read_named needs at least one name")
    return with_tools(first, found)


def whole(view: ToolkitView, token: str) -> tuple[ToolkitView, tuple[ResolvedTool, ...], str]:
    """Page size 0: every tool the caller may list, in one answer."""
    if token:
        raise InvalidArgument("a page token needs a page size", "BAD_PAGE_TOKEN")
    return view, view.listed, ""


def _token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _after(token: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        decoded = None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("after"), str):
        raise InvalidArgument("invalid page token", "BAD_PAGE_TOKEN")
    return str(decoded["after"])
