"""Which protocol versions the gateway serves, and the wire rules that follow from them.

- Served: 2025-06-18 and 2025-11-25 (initialize era) and 2026-07-28. Both `server/discover`
  and the -32022 error name all of them (the SDK names only the modern ones).
- 2024-11-05 and 2025-03-26 are not negotiated: an `initialize` asking for them is answered
  with 2025-06-18 (the spec's counter-offer), because 2025-03-26 requires accepting JSON-RPC
  batches, which the stateless front does not serve. A batch therefore gets a clear -32600.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from starlette.types import Message, Receive, Scope, Send

SERVED_VERSIONS = ("2025-06-18", "2025-11-25", "2026-07-28")
TASKS_SINCE = "2025-11-25"  # the first version with tasks; older clients are not offered them
COUNTER_OFFER = "2025-06-18"
_NOT_NEGOTIATED = ("2024-11-05", "2025-03-26")
UNSUPPORTED_PROTOCOL_VERSION = -32022
BATCH_REFUSED = (
    "JSON-RPC batches are not accepted: this gateway serves protocol versions "
    f"{', '.join(SERVED_VERSIONS)}, none of which has batches. Send one request per POST."
)


# The version an `initialize` in this request asks for: the SDK builds the initialize
# capabilities without the negotiated version, and tasks depend on it.
initialize_version: ContextVar[str | None] = ContextVar("monomcp_initialize_version", default=None)


def negotiated_at_initialize(requested: str | None) -> str | None:
    """What the SDK answers an `initialize` asking for `requested` (after our counter-offer)."""
    if requested is None:
        return None
    return requested if requested in SERVED_VERSIONS[:-1] else "2025-11-25"


def is_batch(body: bytes) -> bool:
    return body.lstrip()[:1] == b"["


def counter_offer(body: bytes) -> bytes | None:
    """The body with an `initialize` for a version we do not negotiate rewritten to ours (else None)."""
    if b'"initialize"' not in body:
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    params = message.get("params") if isinstance(message, dict) else None
    if message.get("method") != "initialize" or not isinstance(params, dict):
        return None
    requested = params.get("protocolVersion")
    initialize_version.set(COUNTER_OFFER if requested in _NOT_NEGOTIATED else str(requested))
    if requested not in _NOT_NEGOTIATED:
        return None
    message["params"] = {**params, "protocolVersion": COUNTER_OFFER}
    return json.dumps(message).encode()


def _with_served_versions(body: bytes) -> bytes | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    error = message.get("error") if isinstance(message, dict) else None
    if not isinstance(error, dict) or error.get("code") != UNSUPPORTED_PROTOCOL_VERSION:
        return None
    data = error.get("data")
    if not isinstance(data, dict):
        return None
    data["supported"] = list(SERVED_VERSIONS)
    return json.dumps(message, separators=(",", ":")).encode()


def naming_served_versions(send: Send) -> Send:
    """Wraps `send` so a -32022 answer (always HTTP 400) lists every version we serve."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message.get("status") == 400:
            start = message
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        body = _with_served_versions(body) or body
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def batch_refusal() -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": BATCH_REFUSED}}


def replay_body(body: bytes, receive: Receive) -> Receive:
    """Hands `body` to the SDK in place of the one the edge already replays, then passes through."""
    replaced = False

    async def wrapped() -> Message:
        nonlocal replaced
        if not replaced:
            replaced = True
            await receive()  # the edge's replay of the original body
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


def scope_with_length(scope: Scope, length: int) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}
