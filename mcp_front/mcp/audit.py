"""The audit row of every request the front records itself, except tools/call (the call
path audits that): MCP requests (the SDK path and the lean path), a `subscriptions/listen`
stream and the initialize era's standalone GET. An audit that cannot be written fails the
request closed."""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp_front.mcp.calls import POLICY_UNAVAILABLE
from mcp_front.mcp.context import Caller, request_facts
from mcp_front.mcp.sdk import MCPError, types
from policy_service import errors
from policy_service.client import PolicyClient

log = logging.getLogger("monomcp.front")


async def audit_request(
    policy: PolicyClient,
    req: Caller,
    method: str,
    params: dict[str, Any],
    result: Any,
    status: str,
    error: str,
    duration_ms: float,
    protocol_version: str,
    *,
    raise_mcp_error: bool = True,
) -> bool:
    """True once the row is written. When it cannot be, raises the MCP error the client
    sees (the request fails), or with `raise_mcp_error=False` returns False, for a caller
    outside the MCP handlers to refuse in its own terms (the GET answers 503)."""
    response: Any = result
    if method == "tools/list" and isinstance(result, dict) and isinstance(result.get("tools"), list):
        # Names suffice (the schemas are in the catalogue): those of the page actually served,
        # which after a cursor is not the cached first page.
        response = {**result, "tools": [t.get("name") if isinstance(t, dict) else t for t in result["tools"]]}
    try:
        await policy.record_request(
            req.credential,
            req.org,
            req.toolkit,
            method,
            request_json=json.dumps({"method": method, "params": params}, default=str),
            response_json=json.dumps(response, default=str),
            status=status,
            error=error,
            duration_ms=duration_ms,
            **request_facts(req, protocol_version),
        )
    except errors.PolicyError as exc:
        log.error("audit of %s failed request_id=%s: %s", method, req.request_id, exc.message)
        if raise_mcp_error:
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
        return False
    return True
