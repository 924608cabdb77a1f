"""What a credential may see of a toolkit, from the policy service's ListTools.

Cached per (credential hash, org, toolkit) for at most `ttl` seconds (≤1 s, DESIGN's
revocation bound) so a tools/call costs only the authorize and complete round trips.
Every call is still authorized by the policy service; this cache only answers 401/404
early, lists tools and validates arguments.

A miss loads the first tools/list page only (TOOLS_PAGE_SIZE tools): a catalogue of any
size costs one bounded message. When more pages follow, a call to a tool not on that page
asks ListTools for that tool by name (`entry_for`), cached the same way
(docs/adr/0023-front-cpu-per-call.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from policy_service.client import Permission, PolicyClient, permission_of
from policy_service.versioned_cache import VersionedCache

APPROVAL_STATUS_TOOL = "approval_status"
_APPROVAL_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approval_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "The approval id named in the result of the call that needs approval.",
        }
    },
    "required": ["approval_id"],
    "additionalProperties": False,
}
APPROVAL_STATUS_WIRE: dict[str, Any] = {
    "name": APPROVAL_STATUS_TOOL,
    "title": "Approval status",
    "description": "Report the progress of an approval request: status, reason, expiry, and the bound tool "
    "and arguments. Always allowed.",
    "inputSchema": _APPROVAL_STATUS_SCHEMA,
    "annotations": {"readOnlyHint": True, "openWorldHint": False},
}

_validators: dict[str, Validator] = {}


def validator(schema_json: str, schema: dict[str, Any]) -> Validator:
    found = _validators.get(schema_json)
    if found is None:
        cls = validator_for(schema, default=Draft202012Validator)
        found = cls(schema)
        if len(_validators) > 5000:
            _validators.clear()
        _validators[schema_json] = found
    return found


@dataclass(frozen=True, slots=True)
class ToolEntry:
    name: str
    permission: Permission
    wire: dict[str, Any]
    validator: Validator


@dataclass(frozen=True, slots=True)
class ToolkitAccess:
    principal_id: str
    principal_display: str
    principal_org: str  # the caller's own org (empty for the operator): its per-org limits apply
    principal_kind: str  # "api_key", "user" or "operator"; a user's limits count the person
    toolkit_name: str
    toolkit_description: str
    tools: dict[str, ToolEntry]  # the whole catalogue when `complete`, else its first page
    tools_wire: list[dict[str, Any]]  # the first tools/list page as sent (with approval_status when complete)
    next_cursor: str = ""  # the policy service's token for the second page ('' when `complete`)

    @property
    def complete(self) -> bool:
        """The whole catalogue fits one tools/list page, so `tools` holds every visible tool."""
        return not self.next_cursor

    def with_tool(self, entry: ToolEntry) -> ToolkitAccess:
        """This view plus one tool from beyond the first page (for one request)."""
        return dataclasses.replace(self, tools={**self.tools, entry.name: entry})

    def input_schema(self, name: str) -> dict[str, Any] | None:
        if name == APPROVAL_STATUS_TOOL:
            return _APPROVAL_STATUS_SCHEMA
        entry = self.tools.get(name)
        return entry.wire["inputSchema"] if entry else None


# ToolEntry per ToolInfo as sent (its serialized bytes): the access cache reloads the first
# tools/list page every TTL, and a page of 500 tools parsed again each time cost the front
# ~0.4 ms per call at c=1 beyond a 10-tool catalogue (docs/benchmarks-scale.md). An entry
# is immutable, so a tool whose bytes did not change maps to the very same one.
_entries: dict[bytes, ToolEntry] = {}
_MAX_ENTRIES = 5_000


def _entry(tool: Any) -> ToolEntry:
    key = tool.SerializeToString(deterministic=True)
    found = _entries.get(key)
    if found is None:
        if len(_entries) >= _MAX_ENTRIES:
            _entries.clear()
        found = _entries[key] = _parse_entry(tool)
    return found


def _parse_entry(tool: Any) -> ToolEntry:
    schema = json.loads(tool.input_schema_json or '{"type":"object"}')
    wire: dict[str, Any] = {"name": tool.name, "description": tool.description, "inputSchema": schema}
    if tool.title:
        wire["title"] = tool.title
    if tool.output_schema_json:
        wire["outputSchema"] = json.loads(tool.output_schema_json)
    if tool.annotations_json:
        wire["annotations"] = json.loads(tool.annotations_json)
    if tool.passthrough_json:  # the backend's icons and _meta, as declared
        wire.update(json.loads(tool.passthrough_json))
    permission = permission_of(tool.permission) or Permission.BLOCKED
    if permission is Permission.NEEDS_APPROVAL:
        # Clients that use tasks (2025-11-25) may wait for the approval as a task.
        wire["execution"] = {"taskSupport": "optional"}
        wire["description"] = (tool.description + "\n\n" if tool.description else "") + (
            "Requires an admin's approval before it runs."
        )
    return ToolEntry(tool.name, permission, wire, validator(tool.input_schema_json, schema))


# tools/list pages; a catalogue that fits one page is served from the access cache as is.
TOOLS_PAGE_SIZE = 500


class AccessCache:
    def __init__(self, policy: PolicyClient, ttl: float) -> None:
        self._policy = policy
        self._cache: VersionedCache[tuple[str, str, str], ToolkitAccess] = VersionedCache(ttl)
        self._entries: VersionedCache[tuple[str, str, str, str], ToolEntry | None] = VersionedCache(ttl)

    async def get(self, credential: str, org: str, toolkit: str, key: str = "") -> ToolkitAccess:
        """Raises the policy client's Unauthenticated, NotFound or PolicyUnavailable.
        `key` is the credential's SHA-256 hex digest when the caller already has it."""
        cache_key = (key or _digest(credential), org, toolkit)
        return await self._cache.get_or_load(cache_key, lambda: self._load(credential, org, toolkit))

    async def entry_for(
        self, access: ToolkitAccess, credential: str, org: str, toolkit: str, name: str, key: str = ""
    ) -> ToolkitAccess:
        """`access` with the tool `name` in `tools` when the credential may see it (one ListTools
        by name when the first page does not hold it). Raises what `get` raises."""
        if access.complete or name in access.tools or name == APPROVAL_STATUS_TOOL:
            return access
        cache_key = (key or _digest(credential), org, toolkit, name)
        entry = await self._entries.get_or_load(cache_key, lambda: self._load_entry(credential, org, toolkit, name))
        return access.with_tool(entry) if entry is not None else access

    async def _load(self, credential: str, org: str, toolkit: str) -> ToolkitAccess:
        response = await self._policy.list_tools(credential, org, toolkit, page_size=TOOLS_PAGE_SIZE)
        entries = {t.name: _entry(t) for t in response.tools}
        wire = [e.wire for e in entries.values()]
        return ToolkitAccess(
            principal_id=response.principal.id,
            principal_display=response.principal.display,
            principal_org=response.principal.org_slug,
            principal_kind=response.principal.kind,
            toolkit_name=response.toolkit_name,
            toolkit_description=response.toolkit_description,
            tools=entries,
            tools_wire=wire if response.next_page_token else [*wire, APPROVAL_STATUS_WIRE],
            next_cursor=response.next_page_token,
        )

    async def _load_entry(self, credential: str, org: str, toolkit: str, name: str) -> ToolEntry | None:
        response = await self._policy.list_tools(credential, org, toolkit, names=[name])
        return next((_entry(t) for t in response.tools if t.name == name), None)


def _digest(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


async def tools_page(
    policy: PolicyClient, access: ToolkitAccess, credential: str, org: str, toolkit: str, cursor: str | None
) -> dict[str, Any]:
    """One tools/list page (`nextCursor` while more follow; the built-in tool on the last).
    Raises the client's InvalidArgument for a cursor the policy service did not issue."""
    if cursor is None:  # the first page is the cached one
        return {"tools": access.tools_wire, **({"nextCursor": access.next_cursor} if access.next_cursor else {})}
    response = await policy.list_tools(credential, org, toolkit, page_size=TOOLS_PAGE_SIZE, page_token=cursor or "")
    tools = [_entry(t).wire for t in response.tools]
    if response.next_page_token:
        return {"tools": tools, "nextCursor": response.next_page_token}
    return {"tools": [*tools, APPROVAL_STATUS_WIRE]}
