"""Per-HTTP-request facts the gateway attaches to the ASGI scope for the MCP handlers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mcp_front.access import ToolkitAccess

SCOPE_KEY = "monomcp"


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    credential: str
    org: str
    toolkit: str
    access: ToolkitAccess
    request_id: str
    client_address: str
    user_agent: str
    protocol_version: str


# For the SDK's get_tool_input_schema hook, which receives only the tool name.
current_request: ContextVar[GatewayRequest | None] = ContextVar("monomcp_request", default=None)


def from_handler_context(ctx: Any) -> GatewayRequest:
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None) or {}
    found = scope.get(SCOPE_KEY)
    if not isinstance(found, GatewayRequest):
        raise RuntimeError("MCP handler reached without gateway context")
    return found
