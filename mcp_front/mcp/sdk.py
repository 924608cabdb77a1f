"""The `mcp` SDK behind one adapter (docs/adr/0006, docs/adr/0015).

Every front module takes what it needs of the SDK from here, and only from here (a unit
test, tests/unit/mcp_front/test_sdk_boundary.py, fails on any other import of `mcp` or
`mcp_types`): its exception and types, the subscription events `listen.py` relays, the
session manager and low-level server (`server.py`, `gateway.py` and `items.py` adapt those),
and the wire rules the lean path (`lean.py`) applies without the SDK's per-request
machinery: the modern era's inbound ladder, the per-version result sieve, the serverInfo
stamp and the error envelopes. An SDK upgrade touches this module and the Server adapters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.server.caching import CacheHint, validate_cache_hints
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY, ResourceUpdated, event_from_wire, event_to_notification
from mcp_types import methods as _methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

__all__ = [
    "MODERN_PROTOCOL_VERSIONS",
    "SUBSCRIPTION_ID_META_KEY",
    "CacheHint",
    "CallNext",
    "HandlerResult",
    "MCPError",
    "ResourceUpdated",
    "Server",
    "ServerRequestContext",
    "StreamableHTTPSessionManager",
    "TransportSecurityMiddleware",
    "TransportSecuritySettings",
    "check_accept_headers",
    "error_body",
    "event_from_wire",
    "event_to_notification",
    "modern_route",
    "types",
    "validate_cache_hints",
    "wire_result",
]

# The gateway's identity, stamped on 2026-07-28 results as the SDK's Server stamps them.
SERVER_NAME = "monomcp-gateway"
SERVER_VERSION = "0.1.0"


# Built once: json.dumps with options builds an encoder per call (docs/adr/0040).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _compact(message: dict[str, Any]) -> bytes:
    return _ENCODER.encode(message).encode()


# The only headers the SDK's inbound ladder reads (ASGI names arrive lower-cased).
_ROUTING_HEADERS = frozenset({b"mcp-protocol-version", b"mcp-method", b"mcp-name"})


def modern_route(message: Mapping[str, Any], raw_headers: list[tuple[bytes, bytes]]) -> InboundModernRoute | None:
    """The 2026-07-28 envelope of a request the SDK would accept, or None: then the SDK's
    own path answers it (with the rejection the SDK writes, byte for byte). Only the routing
    headers are decoded: the ladder reads nothing else (docs/adr/0040)."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers if k in _ROUTING_HEADERS]
    if find_duplicated_routing_header(headers) is not None:
        return None
    folded = dict(headers)
    verdict = classify_inbound_request(message, headers=folded)
    return verdict if isinstance(verdict, InboundModernRoute) else None


def params_headers_agree(
    input_schema: Any, arguments: Mapping[str, Any], raw_headers: list[tuple[bytes, bytes]]
) -> bool:
    """A 2026-07-28 tools/call's `Mcp-Param-*` headers match its arguments (else the SDK refuses it)."""
    if not arguments and not any(k.startswith(b"mcp-param-") for k, _ in raw_headers):
        return True  # nothing to declare, nothing declared: the SDK skips the check too
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers}
    return validate_mcp_param_headers(input_schema, arguments, headers) is None


def wire_result(method: str, version: str, result: dict[str, Any], hint: CacheHint | None = None) -> dict[str, Any]:
    """The result as the SDK's runner shapes it for `version`: cache hints the handler left
    unset, the per-version sieve, and on 2026-07-28 `resultType` and the serverInfo stamp."""
    if hint is not None:
        result = {"ttlMs": hint.ttl_ms, "cacheScope": hint.scope, **result}
    modern = version in MODERN_PROTOCOL_VERSIONS
    if modern and "resultType" not in result:
        result = {"resultType": "complete", **result}
    dumped = _plain_text_call(result, modern) if method == "tools/call" and version in PLAIN_TEXT_VERSIONS else None
    if dumped is None:
        dumped = _methods.serialize_server_result(method, version, result)
    if modern:
        meta = dumped.get("_meta")
        stamp = {"name": SERVER_NAME, "version": SERVER_VERSION}
        if meta is None:
            dumped["_meta"] = {types.SERVER_INFO_META_KEY: stamp}
        elif isinstance(meta, dict) and meta.get(types.SERVER_INFO_META_KEY) is None:
            dumped["_meta"] = {**meta, types.SERVER_INFO_META_KEY: stamp}
    return dumped


_TEXT_BLOCK_KEYS = frozenset({"type", "text"})
# The versions whose sieve `_plain_text_call` is pinned to (the lean path's).
PLAIN_TEXT_VERSIONS = frozenset({"2025-06-18", "2025-11-25", "2026-07-28"})


def _only_server_info(meta: Any) -> bool:
    """`_meta` is just the serverInfo stamp an SDK backend puts on its results: {name, version}."""
    if type(meta) is not dict or len(meta) != 1:
        return False
    info = meta.get(types.SERVER_INFO_META_KEY)
    return (
        type(info) is dict
        and list(info) == ["name", "version"]
        and type(info["name"]) is str
        and type(info["version"]) is str
    )


def _plain_text_call(result: dict[str, Any], modern: bool) -> dict[str, Any] | None:
    """What the sieve makes of the commonest tools/call result (text blocks, maybe `isError`
    and a backend's serverInfo stamp, and on 2026-07-28 `resultType: complete`), built
    without pydantic: ~5% of the front's instructions per call (docs/adr/0040). None for
    any other shape: the sieve decides.
    tests/unit/mcp_front/mcp/test_plain_results.py pins it to the sieve's output, key order included."""
    meta = result.get("_meta")
    if "_meta" in result and not _only_server_info(meta):
        return None
    extra = len(result) - ("content" in result) - ("isError" in result) - ("_meta" in result)
    if modern:
        if result.get("resultType") != "complete":
            return None
        extra -= 1
    content = result.get("content")
    error = result.get("isError", False)
    if extra or type(content) is not list or type(error) is not bool:
        return None
    blocks = []
    for block in content:
        if type(block) is not dict or block.keys() != _TEXT_BLOCK_KEYS or block["type"] != "text":
            return None
        text = block["text"]
        if type(text) is not str:
            return None
        blocks.append({"text": text, "type": "text"})
    dumped: dict[str, Any] = {"content": blocks} if meta is None else {"_meta": meta, "content": blocks}
    if "isError" in result:
        dumped["isError"] = error
    if modern:
        dumped["resultType"] = "complete"
    return dumped


def result_body(request_id: str | int, result: dict[str, Any]) -> bytes:
    return _compact({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_body(request_id: str | int, exc: Exception, modern: bool) -> tuple[int, bytes]:
    """(HTTP status, body) for a handler failure, as each era's SDK transport writes it."""
    error = handler_exception_to_error_data(exc)
    if modern:
        error = error or types.ErrorData(code=types.INTERNAL_ERROR, message="Internal server error")
        envelope = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
        body = envelope.model_dump(mode="json", by_alias=True, exclude_none=True)
        return ERROR_CODE_HTTP_STATUS.get(error.code, 200), _compact(body)
    # The initialize era's dispatcher pins code 0 for anything that is not an MCPError.
    error = error or types.ErrorData(code=0, message=str(exc))
    envelope = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
    return 200, envelope.model_dump_json(by_alias=True, exclude_unset=True).encode()
