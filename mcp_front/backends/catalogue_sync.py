"""Fetch a toolkit backend's tools/list as catalogue entries for SyncTools (CLI and REST)."""

from __future__ import annotations

import json
from typing import Any

from mcp_front.backends.upstream import UpstreamPool


async def fetch_catalogue(url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    pool = UpstreamPool()
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
