"""The one audit helper fails closed both ways: an MCP handler's request fails with the
policy-unavailable error, the standalone GET is told to refuse (it answers 503)."""

from __future__ import annotations

import pytest

from mcp_front.edge.request import EdgeRequest
from mcp_front.mcp.audit import audit_request
from mcp_front.mcp.calls import POLICY_UNAVAILABLE
from mcp_front.mcp.sdk import MCPError
from policy_service.client import PolicyClient
from tests.support.servers import free_port

EDGE = EdgeRequest("acme", "docs", "req-1", "127.0.0.1", "test", "2025-11-25", token="mmcp_secret")


async def test_an_audit_the_policy_service_cannot_take_fails_the_request_closed() -> None:
    async with PolicyClient(f"127.0.0.1:{free_port()}", timeout=1.0) as nobody:  # nothing listens there
        with pytest.raises(MCPError) as refused:
            await audit_request(nobody, EDGE, "GET", {}, {"stream": "standalone"}, "ok", "", 0.0, "2025-11-25")
        assert refused.value.error.message == POLICY_UNAVAILABLE
        recorded = await audit_request(
            nobody, EDGE, "GET", {}, {"stream": "standalone"}, "ok", "", 0.0, "2025-11-25", raise_mcp_error=False
        )
        assert recorded is False
