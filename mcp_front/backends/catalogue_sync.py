"""Sync a toolkit's catalogue from its backend's tools/list (shared by the CLI and REST).

Authorization comes first: the caller must be allowed to manage the toolkit before
anything is sent to its backend, and the backend is reached only where the operator's
egress policy allows. Tools arrive without a permission: the policy service gives new
ones a default from their annotations (read-only → allowed, else the toolkit's default).
"""

from __future__ import annotations

import json
from typing import Any

from mcp_front.backends.upstream import UpstreamPool
from policy_service import errors
from policy_service.client import PolicyClient
from policy_service.toolkits.egress import EgressPolicy


async def fetch_catalogue(
    url: str, headers: dict[str, str] | None = None, egress: EgressPolicy | None = None
) -> list[dict[str, Any]]:
    """The backend's tools as SyncTools specs. Raises UpstreamError (UpstreamTimeout)."""
    pool = UpstreamPool(egress=egress)
    try:
        listed = await pool.list_tools(url, headers or {})
    finally:
        await pool.close()
    return [
        {
            "name": t["name"],
            "title": t.get("title", ""),
            "description": t.get("description", ""),
            "input_schema_json": json.dumps(t.get("inputSchema") or {"type": "object"}),
            "output_schema_json": json.dumps(t["outputSchema"]) if t.get("outputSchema") else "",
            "annotations_json": json.dumps(t["annotations"]) if t.get("annotations") else "",
        }
        for t in listed
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]


async def sync_catalogue(client: PolicyClient, org: str, slug: str, prune: bool, egress: EgressPolicy) -> Any:
    """Authorize, fetch tools/list, store it; returns the SyncToolsResponse.

    Raises PermissionDenied (nothing sent) for callers who may not manage the toolkit,
    FailedPrecondition when it has no backend, UpstreamError when the backend fails.
    """
    toolkit = await client.get_toolkit(org, slug)
    if not toolkit.manageable:
        raise errors.PermissionDenied("only an admin of the toolkit's org can sync its catalogue", "NOT_ADMIN")
    if not toolkit.backend_url:
        raise errors.FailedPrecondition("the toolkit has no backend_url", "NO_BACKEND")
    specs = await fetch_catalogue(toolkit.backend_url, egress=egress)
    return await client.sync_tools(toolkit.org_slug, slug, specs, prune)
