"""Sync a toolkit's catalogue from its backend (shared by the CLI and REST): tools/list,
resources/list, resources/templates/list and prompts/list.

Authorization comes first: the caller must be allowed to manage the toolkit before
anything is sent to its backend, and the backend is reached only where the operator's
egress policy allows. Items arrive without a permission: the policy service gives new
tools a default from their annotations (read-only → allowed, else the toolkit's default)
and new resources, templates and prompts `always_allow` unless the owner blocks new items.
A backend that does not serve a list method (-32601) simply has none of that kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp_front.backends.upstream import UpstreamPool
from policy_service import errors
from policy_service.client import PolicyClient
from policy_service.toolkits import stdio_backend
from policy_service.toolkits.egress import EgressPolicy

Spec = dict[str, Any]


def _tool(t: Spec) -> Spec | None:
    if not isinstance(t.get("name"), str):
        return None
    return {
        "kind": "tool",
        "name": t["name"],
        "title": t.get("title") or "",
        "description": t.get("description") or "",
        "input_schema_json": json.dumps(t.get("inputSchema") or {"type": "object"}),
        "output_schema_json": json.dumps(t["outputSchema"]) if t.get("outputSchema") else "",
        "annotations_json": json.dumps(t["annotations"]) if t.get("annotations") else "",
        "spec_json": json.dumps(t),
    }


def _item(kind: str, key: str) -> Callable[[Spec], Spec | None]:
    """Resources are keyed by `uri`, templates by `uriTemplate`, prompts by `name`."""

    def convert(item: Spec) -> Spec | None:
        name = item.get(key)
        if not isinstance(name, str) or not name:
            return None
        title = item.get("title") or (item.get("name") if kind != "prompt" else "") or ""
        return {
            "kind": kind,
            "name": name,
            "title": title if isinstance(title, str) else "",
            "description": item.get("description") if isinstance(item.get("description"), str) else "",
            "spec_json": json.dumps(item),
        }

    return convert


# (list method, result key, converter)
_LISTS: list[tuple[str, str, Callable[[Spec], Spec | None]]] = [
    ("tools/list", "tools", _tool),
    ("resources/list", "resources", _item("resource", "uri")),
    ("resources/templates/list", "resourceTemplates", _item("resource_template", "uriTemplate")),
    ("prompts/list", "prompts", _item("prompt", "name")),
]
KINDS = ("tool", "resource", "resource_template", "prompt")


async def fetch_catalogue(
    url: str, headers: dict[str, str] | None = None, egress: EgressPolicy | None = None
) -> list[Spec]:
    """Every item the backend lists, as SyncTools specs. Raises UpstreamError (UpstreamTimeout)."""
    pool = UpstreamPool(egress=egress)
    specs: list[Spec] = []
    try:
        for method, key, convert in _LISTS:
            if method == "tools/list":
                listed = await pool.list_tools(url, headers or {})
            else:
                listed = await pool.list_all(url, headers or {}, method, key)
            specs.extend(s for s in (convert(i) for i in listed if isinstance(i, dict)) if s is not None)
    finally:
        await pool.close()
    return specs


async def sync_catalogue(client: PolicyClient, org: str, slug: str, prune: bool, egress: EgressPolicy) -> Any:
    """Authorize, fetch every list, store it; returns the SyncToolsResponse.

    Raises PermissionDenied (nothing sent) for callers who may not manage the toolkit,
    FailedPrecondition when it has no backend, UpstreamError when the backend fails.
    """
    toolkit = await client.get_toolkit(org, slug)
    if not toolkit.manageable:
        raise errors.PermissionDenied("only an admin of the toolkit's org can sync its catalogue", "NOT_ADMIN")
    if not toolkit.backend_url:
        raise errors.FailedPrecondition("the toolkit has no backend_url", "NO_BACKEND")
    if toolkit.backend_transport == "stdio" and not stdio_backend.is_full_address(toolkit.backend_url):
        raise errors.PermissionDenied(
            "only the operator can sync a stdio backend's catalogue (it starts the command on this host)",
            "STDIO_NEEDS_OPERATOR",
        )
    specs = await fetch_catalogue(toolkit.backend_url, egress=egress)
    return await client.sync_tools(toolkit.org_slug, slug, specs, prune, kinds=KINDS)
