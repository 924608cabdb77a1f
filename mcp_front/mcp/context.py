"""Per-HTTP-request facts the gateway attaches to the ASGI scope for the MCP handlers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

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


class Caller(Protocol):
    """What audit rows and tenant scopes read of a request: a `GatewayRequest`, or the edge's
    `EdgeRequest` where no MCP handler runs (the standalone GET)."""

    @property
    def credential(self) -> str: ...
    @property
    def org(self) -> str: ...
    @property
    def toolkit(self) -> str: ...
    @property
    def access(self) -> ToolkitAccess | None: ...
    @property
    def request_id(self) -> str: ...
    @property
    def client_address(self) -> str: ...
    @property
    def user_agent(self) -> str: ...
    @property
    def protocol_version(self) -> str: ...


class RequestFacts(TypedDict):
    request_id: str
    client_address: str
    user_agent: str
    protocol_version: str


def request_facts(req: Caller, protocol_version: str | None = None) -> RequestFacts:
    """What every policy RPC about a request records of it (its RequestMeta);
    `protocol_version` when the handler knows better than the request's header."""
    return RequestFacts(
        request_id=req.request_id,
        client_address=req.client_address,
        user_agent=req.user_agent,
        protocol_version=req.protocol_version if protocol_version is None else protocol_version,
    )


# For the SDK's get_tool_input_schema hook, which receives only the tool name.
current_request: ContextVar[GatewayRequest | None] = ContextVar("monomcp_request", default=None)


def from_handler_context(ctx: Any) -> GatewayRequest:
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None) or {}
    found = scope.get(SCOPE_KEY)
    if not isinstance(found, GatewayRequest):
        raise RuntimeError("MCP handler reached without gateway context")
    return found
