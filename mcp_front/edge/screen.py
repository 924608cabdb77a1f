"""JSON-RPC screening at the edge, before the SDK sees a body.

Decides, from the raw body, whether a request is refused here (parse errors, NaN/Infinity,
control characters in a method or tool name), audited and then handed to the SDK for its
usual answer (an envelope the SDK will reject), or simply passed on. The SDK parses again:
a small body costs microseconds, and the SDK's wire behaviour stays untouched. A request that
passes keeps its decoded form for the lean path (`mcp_front.mcp.lean`), which parses nothing again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from mcp_front.edge.text import has_control, storable
from mcp_front.mcp.sdk import MODERN_PROTOCOL_VERSIONS

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
_MAX_AUDITED_BODY = 4096


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 overflows to Infinity
        raise _NonFinite(text)
    return value


# One decoder, built once: json.loads with hooks would build a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


@dataclass(frozen=True, slots=True)
class Verdict:
    """`respond` is None when the SDK answers; `audit_status` is None when nothing is audited here."""

    audit_status: str | None = None
    error: str = ""
    method: str = "http"
    tool: str = ""
    request_json: str = ""
    respond: tuple[int, dict[str, Any]] | None = None
    message: Any = None  # the decoded request when it passes: the lean path parses nothing twice


PASS = Verdict()


def _rpc_error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _raw_text(body: bytes) -> str:
    return json.dumps(body[:_MAX_AUDITED_BODY].decode("utf-8", "replace"))


def _parse_error(body: bytes, reason: str) -> Verdict:
    return Verdict(
        "invalid", reason, request_json=_raw_text(body), respond=(400, _rpc_error(None, PARSE_ERROR, reason))
    )


def _lone_surrogate(message: Any) -> bool:
    """A `\\ud800` escape without its pair decodes to text no UTF-8 store, log or peer accepts
    (the audit row, the approval's arguments, protobuf): refused here, before anything tries.
    Only checked when the raw body has such an escape at all (escaped emoji pairs pass)."""
    try:
        json.dumps(message, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return True
    return False


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def screen(body: bytes, protocol_version: str) -> Verdict:
    try:
        message = _DECODER.decode(body.decode("utf-8"))
    except _NonFinite as exc:
        return _parse_error(body, f"Parse error: {exc} is not valid JSON (NaN and Infinity are not JSON numbers)")
    except (ValueError, RecursionError):
        return _parse_error(body, "Parse error: the body is not valid JSON")
    if (b"\\ud" in body or b"\\uD" in body) and _lone_surrogate(message):
        return _parse_error(body, "Parse error: the body escapes a lone UTF-16 surrogate, which is not Unicode text")
    if not isinstance(message, dict):
        return Verdict("invalid", "not a single JSON-RPC object", request_json=_raw_text(body))
    method = message.get("method")
    if method is None:
        if "id" in message and ("result" in message or "error" in message):
            return PASS  # a client's response to a server request
        return Verdict("invalid", "not a JSON-RPC request", request_json=_raw_text(body))
    if not isinstance(method, str):
        return Verdict("invalid", "method is not a string", request_json=_raw_text(body))
    if "id" in message and not _valid_id(message["id"]):
        # The SDK drops it with a bare 202 (neither request nor notification): audited here.
        return Verdict("invalid", "id is not a string or an integer", request_json=_raw_text(body))
    return _screen_names(message, method, protocol_version)


def _screen_names(message: dict[str, Any], method: str, protocol_version: str) -> Verdict:
    request_id = message.get("id") if _valid_id(message.get("id")) else None
    # A legacy handler's JSON-RPC error travels in a 200; 2026-07-28 maps it to 400 (as the SDK does).
    status = 400 if request_id is None or protocol_version in MODERN_PROTOCOL_VERSIONS else 200
    if has_control(method):
        reason = "Invalid request: the method name contains control characters"
        return _refuse(message, method, "", status, request_id, INVALID_REQUEST, reason)
    if method == "tools/call":
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if isinstance(name, str) and has_control(name):
            reason = "Invalid params: the tool name contains control characters"
            return _refuse(message, method, name, status, request_id, INVALID_PARAMS, reason)
    return Verdict(message=message)


def _refuse(
    message: dict[str, Any], method: str, tool: str, status: int, request_id: Any, code: int, reason: str
) -> Verdict:
    safe = storable(message)
    return Verdict(
        "invalid",
        reason,
        method=storable(method)[:64],
        tool=storable(tool)[:128],
        request_json=json.dumps(safe)[: _MAX_AUDITED_BODY * 4],
        respond=(status, _rpc_error(request_id, code, reason)),
    )
