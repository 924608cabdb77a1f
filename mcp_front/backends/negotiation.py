"""Which protocol version the front speaks to one backend, and what that changes on the wire.

A backend tells us its version once, when the upstream session opens: in the initialize era
it answers `initialize` with the version it chose (a `mcp` 1.x server stops at 2025-06-18 and
refuses any request whose `MCP-Protocol-Version` header names a newer one); a 2026-07-28-only
backend refuses the handshake with -32022 naming its versions, and from then on every request
carries the per-request envelope (`_meta` version and capabilities, `Mcp-Method`/`Mcp-Name`
headers) instead of a session. The version is remembered per upstream session, so every
later request speaks it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

# What the front offers at initialize, and the versions it can speak to a backend.
OFFERED_VERSION = "2025-11-25"
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
UNSUPPORTED_PROTOCOL_VERSION = -32022
# Versions before the MCP-Protocol-Version header existed: send none (the backend assumes them).
_NO_HEADER_VERSIONS = ("2024-11-05", "2025-03-26")

PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
CLIENT_INFO = {"name": "monomcp-gateway", "version": "0.1.0"}
_NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_HEADER_SAFE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")


class NegotiationFailed(Exception):
    """The backend's answer to the handshake names no version the front can speak."""


@dataclass(frozen=True, slots=True)
class Negotiated:
    """One upstream session: its id (initialize era, when the backend keeps sessions) and version."""

    session_id: str | None
    protocol_version: str

    @property
    def modern(self) -> bool:
        return self.protocol_version in MODERN_VERSIONS


# What the gateway offers a backend on behalf of its clients: requests for a capability a
# given client lacks are answered with an error by the relay (mcp_front/mcp/relay.py).
RELAYED_CLIENT_CAPABILITIES: dict[str, Any] = {"sampling": {}, "elicitation": {"form": {}, "url": {}}}


def initialize_request(request_id: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": OFFERED_VERSION,
            "capabilities": RELAYED_CLIENT_CAPABILITIES,
            "clientInfo": CLIENT_INFO,
        },
    }


def negotiated_version(answer: Any) -> str:
    """The version a backend chose in its answer to `initialize`; raises NegotiationFailed.

    A result names the version the backend will speak (it must be one we offered or older);
    a -32022 error names the versions a 2026-07-28 backend serves instead of the handshake."""
    if not isinstance(answer, dict):
        raise NegotiationFailed("the backend answered initialize without a JSON-RPC message")
    result = answer.get("result")
    if isinstance(result, dict):
        version = result.get("protocolVersion")
        if version in HANDSHAKE_VERSIONS:
            return str(version)
        raise NegotiationFailed(f"the backend chose protocol version {version!r}, which the gateway does not speak")
    error = answer.get("error")
    if isinstance(error, dict) and error.get("code") == UNSUPPORTED_PROTOCOL_VERSION:
        data = error.get("data")
        supported = data.get("supported") if isinstance(data, dict) else None
        mutual = [v for v in MODERN_VERSIONS if isinstance(supported, list) and v in supported]
        if mutual:
            return mutual[-1]
        raise NegotiationFailed(f"the backend serves only protocol versions {supported!r}")
    raise NegotiationFailed(f"the backend refused initialize: {error!r}")


def request_headers(session: Negotiated, body: dict[str, Any]) -> dict[str, str]:
    """The protocol headers one request to this backend carries."""
    version = session.protocol_version
    headers: dict[str, str] = {}
    if version not in _NO_HEADER_VERSIONS:
        headers["mcp-protocol-version"] = version
    if session.session_id and not session.modern:
        headers["mcp-session-id"] = session.session_id
    method = body.get("method")
    if session.modern and isinstance(method, str):
        headers["mcp-method"] = method
        params = body.get("params")
        name = params.get(_NAME_BEARING.get(method, "")) if isinstance(params, dict) else None
        if isinstance(name, str):
            headers["mcp-name"] = _header_value(name)
    return headers


def envelope(session: Negotiated, params: dict[str, Any]) -> dict[str, Any]:
    """2026-07-28 requests carry version and capabilities in `_meta`; older ones are unchanged."""
    if not session.modern:
        return params
    meta = dict(params.get("_meta") or {})
    meta[PROTOCOL_VERSION_META_KEY] = session.protocol_version
    meta[CLIENT_CAPABILITIES_META_KEY] = {}
    meta[CLIENT_INFO_META_KEY] = CLIENT_INFO
    return {**params, "_meta": meta}


def plain_result(session: Negotiated, result: dict[str, Any]) -> dict[str, Any]:
    """A 2026-07-28 backend's complete result without its era marker; the front's own server
    adds `resultType` again for clients of that era and must not send it to older ones."""
    if session.modern and result.get("resultType") == "complete":
        return {k: v for k, v in result.items() if k != "resultType"}
    return result


def _header_value(value: str) -> str:
    """Header-safe form of a name (the 2026-07-28 base64 sentinel for anything else)."""
    if _HEADER_SAFE.fullmatch(value) and not value.startswith("=?base64?"):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="
