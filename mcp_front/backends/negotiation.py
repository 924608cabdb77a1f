"""Which protocol version the front speaks to one backend, and what that changes on the wire.

The client's era picks the first offer (docs/adr/0032-speaking-the-clients-era.md). For a
2026-07-28 client the front asks the backend `server/discover` once per tenant-scoped
upstream key: a backend that lists 2026-07-28 gets that client's requests in the per-request
envelope (`_meta` version, capabilities and log level, `Mcp-Method`/`Mcp-Name` headers), no
session; any other answer (a `mcp` 1.x server's 400 or -32601, the TS servers' "not
initialized") means the handshake. Initialize-era clients, and the methods 2026-07-28 lacks
(subscriptions, logging/setLevel), always take the tenant's session (on a 2026-07-28-only
backend a subscription becomes the front's listen filter, ADR 0048): the backend answers
`initialize` with the version it chose (a `mcp` 1.x server stops at 2025-06-18 and refuses
any request whose `MCP-Protocol-Version` header names a newer one), and a 2026-07-28-only
backend refuses it with -32022 naming its versions. Either answer is remembered per upstream
key, so every later request speaks it.
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

LISTEN = "subscriptions/listen"  # 2026-07-28's standing stream, a POST

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


# A backend that serves 2026-07-28, spoken to in that era: no session, nothing to open.
MODERN_SESSION = Negotiated(None, MODERN_VERSIONS[-1])
# What a 2026-07-28 client's request may become on a backend in its era; the rest (the
# subscribe pair, logging/setLevel) has no 2026-07-28 form and stays on the handshake session.
MODERN_METHODS = frozenset(
    {
        "tools/call",
        "tools/list",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "prompts/list",
        "prompts/get",
        "completion/complete",
    }
)
# Requests 2026-07-28 removed whose effect, on a session of that era, is the front's own
# `subscriptions/listen` filter toward the backend (docs/adr/0048): never sent as requests.
LISTEN_FILTERED = frozenset({"resources/subscribe", "resources/unsubscribe"})
SUBSCRIPTION_ID_META_KEY = "io.modelcontextprotocol/subscriptionId"
_LIST_CHANGES = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
# A 2026-07-28 client's per-request log level: a backend in that era hears it (with the
# client's capabilities); the other reserved keys name this hop and the gateway fills them in.
LOG_LEVEL_META_KEY = "io.modelcontextprotocol/logLevel"


def client_modern(client_version: str | None, method: str) -> bool:
    """Whether this client request may travel in 2026-07-28 (when its backend serves that era).
    A 2026-07-28 client's subscription (its listen's URIs) on such a backend becomes the
    front's listen filter, that era's way, not a request on the handshake session (ADR 0053)."""
    return client_version in MODERN_VERSIONS and (method in MODERN_METHODS or method in LISTEN_FILTERED)


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


def discover_request(request_id: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "server/discover", "params": envelope(MODERN_SESSION, {})}


def serves_modern(status: int, answer: Any) -> bool | None:
    """What a backend's answer to `server/discover` says: True when it lists 2026-07-28, False
    when it answered anything else (a JSON-RPC error, a 4xx: it speaks the handshake only),
    None when there is nothing to judge (a 5xx without a JSON-RPC message: ask again later)."""
    if isinstance(answer, dict):
        result = answer.get("result")
        if isinstance(result, dict):
            versions = result.get("supportedVersions")
            return isinstance(versions, list) and any(v in versions for v in MODERN_VERSIONS)
        if isinstance(answer.get("error"), dict):
            return False
    return False if status < 500 else None


def listen_request(request_id: int, uris: list[str]) -> dict[str, Any]:
    """The front's one `subscriptions/listen` toward a 2026-07-28 backend for a tenant: every
    list change (the hub gives each client stream what it asked for) and the URIs the tenant's
    clients subscribed to."""
    wanted: dict[str, Any] = dict(_LIST_CHANGES) | ({"resourceSubscriptions": uris} if uris else {})
    params = envelope(MODERN_SESSION, {"notifications": wanted})
    return {"jsonrpc": "2.0", "id": request_id, "method": LISTEN, "params": params}


def refused_version(session: Negotiated, message: Any) -> bool:
    """A 2026-07-28 request answered -32022: the backend no longer serves that era (redeployed)."""
    if not session.modern or not isinstance(message, dict):
        return False
    error = message.get("error")
    return isinstance(error, dict) and error.get("code") == UNSUPPORTED_PROTOCOL_VERSION


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


def envelope(session: Negotiated, params: dict[str, Any], client: dict[str, Any] | None = None) -> dict[str, Any]:
    """2026-07-28 requests carry version and capabilities in `_meta`; older ones are unchanged.

    `client` is a 2026-07-28 client's own era metadata (log level and capabilities): its log level
    and capabilities reach a backend in that era, so the backend logs and asks for input as it
    would for that client; without it the gateway declares no capabilities."""
    if not session.modern:
        return params
    meta = dict(params.get("_meta") or {})
    meta[CLIENT_CAPABILITIES_META_KEY] = {}
    meta.update(client or {})
    meta[PROTOCOL_VERSION_META_KEY] = session.protocol_version
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
