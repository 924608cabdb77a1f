"""The lean path: a single POSTed `tools/call`, `tools/list` or `ping` answered without the
SDK's per-request transport, dispatcher and task machinery (docs/adr/0015-lean-front-path.md).

The body was decoded once by the edge's screen; here it is checked against the shapes the
SDK accepts, then the call path runs exactly as under the SDK (validate with the cached
validator, authorize, forward, complete durably) and the reply is encoded once. What the
SDK would shape (the per-version result sieve, cache hints, `resultType`, the serverInfo
stamp, error envelopes) comes from the adapter, so both paths answer alike.

Anything else returns False and takes the SDK path: other methods, a request the SDK would
refuse (it writes the refusal), tasks, `requestState`/`inputResponses`, tools that are not
`always_allow` (approvals and their URL elicitation), `approval_status`, a missing or
unknown protocol version header. A backend that streams needs no fallback: the call's
relay turns this response into SSE exactly as on the SDK path.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from mcp_front.mcp import sdk
from mcp_front.mcp.calls import CallFlow, ToolCaller
from mcp_front.mcp.context import GatewayRequest
from mcp_front.mcp.relay import ClientChannel, relay_from
from mcp_front.mcp.server import TOOLS_LIST_HINT, audit_request, forwardable_meta
from policy_service.client import PolicyClient

log = logging.getLogger("monomcp.front")

_INITIALIZE_ERA = frozenset({"2025-06-18", "2025-11-25"})
_MODERN = "2026-07-28"
_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_CALL_KEYS = frozenset({"name", "arguments", "_meta"})
_JSON_HEAD = [(b"content-type", b"application/json")]


def _request_id(message: dict[str, Any]) -> str | int | None:
    value = message.get("id")
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


def _plain_meta(params: dict[str, Any]) -> bool:
    """`_meta`, when present, is an object whose progress token (if any) is a string or integer."""
    meta = params.get("_meta")
    if meta is None:
        return "_meta" not in params
    if not isinstance(meta, dict):
        return False
    token = meta.get("progressToken", "")
    return isinstance(token, str) or (isinstance(token, int) and not isinstance(token, bool))


def lean_params(message: Any) -> tuple[str | int, str, dict[str, Any]] | None:
    """(id, method, params) of a request the lean path serves as the SDK would, else None."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not _ENVELOPE_KEYS.issuperset(message):
        return None
    request_id = _request_id(message)
    method = message.get("method")
    params = message.get("params", {})
    if request_id is None or not isinstance(params, dict) or not _plain_meta(params):
        return None
    if method == "tools/call":
        arguments = params.get("arguments", {})
        if not _CALL_KEYS.issuperset(params) or not isinstance(params.get("name"), str):
            return None
        if not isinstance(arguments, dict):
            return None
    elif method in ("tools/list", "ping"):
        if not {"_meta"}.issuperset(params):  # a cursor, or anything else: the SDK answers
            return None
    else:
        return None
    return request_id, method, params


class LeanPath:
    def __init__(self, caller: ToolCaller, policy: PolicyClient) -> None:
        self._caller = caller
        self._policy = policy

    async def handle(self, scope: Scope, receive: Receive, send: Send, req: GatewayRequest, message: Any) -> bool:
        """True when this request was answered here; False hands it to the SDK untouched."""
        version = req.protocol_version
        modern = version == _MODERN
        if not modern and version not in _INITIALIZE_ERA:
            return False
        found = lean_params(message)
        if found is None:
            return False
        request_id, method, params = found
        if method == "tools/call" and not self._lean_call(req, params, scope, modern):
            return False
        if method == "tools/list" and not req.access.complete:
            return False  # a catalogue that needs pages: the SDK path pages it with cursors
        if modern and (method == "ping" or sdk.modern_route(message, scope["headers"]) is None):
            return False
        channel = ClientChannel(send, receive)
        try:
            result = await self._dispatch(channel, req, request_id, method, params, modern)
            status, body = 200, sdk.result_body(request_id, sdk.wire_result(method, version, result, _hint(method)))
        except Exception as exc:  # the SDK's mapping: MCPError keeps its code, the rest is logged
            if not isinstance(exc, sdk.MCPError):
                log.exception("lean %s failed request_id=%s", method, req.request_id)
            status, body = sdk.error_body(request_id, exc, modern)
        await _respond(channel.send, status, body)
        return True

    def _lean_call(self, req: GatewayRequest, params: dict[str, Any], scope: Scope, modern: bool) -> bool:
        """Only plain calls of always-allowed tools: approvals keep their richer flows on the SDK path."""
        entry = req.access.tools.get(params["name"])
        if entry is None or entry.permission != "always_allow":
            return False
        if modern:
            return sdk.params_headers_agree(entry.wire["inputSchema"], params.get("arguments", {}), scope["headers"])
        return True

    async def _dispatch(
        self,
        channel: ClientChannel,
        req: GatewayRequest,
        request_id: str | int,
        method: str,
        params: dict[str, Any],
        modern: bool,
    ) -> dict[str, Any]:
        if method == "tools/call":
            meta = params.get("_meta")
            relay = relay_from(
                channel, meta, request_id, req.credential, f"{req.org}/{req.toolkit}", self._caller.relays, modern
            )
            flow = CallFlow(relay=relay, meta=forwardable_meta(meta))
            return await self._caller.call(req, params["name"], dict(params.get("arguments", {})), flow)
        started = time.perf_counter()
        result: dict[str, Any] = {"tools": req.access.tools_wire} if method == "tools/list" else {}
        duration_ms = (time.perf_counter() - started) * 1000
        await audit_request(self._policy, req, method, params, result, "ok", "", duration_ms, req.protocol_version)
        return result


def _hint(method: str) -> sdk.CacheHint | None:
    return TOOLS_LIST_HINT if method == "tools/list" else None


async def _respond(send: Send, status: int, body: bytes) -> None:
    head: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [*_JSON_HEAD, (b"content-length", str(len(body)).encode())],
    }
    await send(head)
    await send({"type": "http.response.body", "body": body})
