"""A catalogue sync is bounded in what it keeps: a toolkit backend (any org admin chooses
one) that pages on without end, or lists more than one SyncTools message could ever carry,
fails the sync once its pages pass `CATALOGUE_MAX_BYTES`, before the front asks for more.

Regression: the front kept up to 100 pages of up to 15 MiB each in memory; measured on
`monomcp dev`, one admin's sync of ten 14 MiB pages took the shared front from 140 MB to
5.1 GB, and a hundred pages would have taken it (and every tenant's MCP traffic) down."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_front.backends import upstream
from mcp_front.backends.catalogue_sync import fetch_catalogue
from mcp_front.backends.upstream import UpstreamError
from policy_service.toolkits.egress import EgressPolicy
from tests.support.servers import read_body, serve_asgi

TOOLS_PER_PAGE = 400  # ~20 KB of JSON per page


class EndlessCatalogue:
    """An MCP backend whose tools/list always has a next page."""

    def __init__(self) -> None:
        self.pages = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        request = json.loads(body)
        if "id" not in request:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if request["method"] == "initialize":
            server = {"name": "endless", "version": "1"}
            result: dict[str, Any] = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": server,
            }
        elif request["method"] == "tools/list":
            self.pages += 1
            tools = [{"name": f"t{self.pages}_{i}", "inputSchema": {"type": "object"}} for i in range(TOOLS_PER_PAGE)]
            result = {"tools": tools, "nextCursor": str(self.pages)}
        else:
            result = {}
        answer = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})


async def test_an_endless_catalogue_fails_the_sync_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "CATALOGUE_MAX_BYTES", 64 * 1024, raising=False)
    backend = EndlessCatalogue()
    async with serve_asgi(backend) as base:
        with pytest.raises(UpstreamError, match="too large a catalogue"):
            await fetch_catalogue(f"{base}/mcp", egress=EgressPolicy.parse("127.0.0.1"))
    assert backend.pages <= 5  # 64 KiB of ~20 KB pages: the fourth page passes the budget
