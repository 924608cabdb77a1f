"""`Mcp-Session-Id` for initialize-era clients (docs/adr/0030-session-ids-and-long-streams.md).

The front stays stateless: the id is an opaque token `<version>~<nonce>.<expiry>.<mac>`
whose MAC (the request-state key every replica shares) binds the verified principal (the
API key, or the user of an OAuth token), the org and the toolkit, so every replica accepts
it without shared state and an id shown with another credential or on another toolkit
fails exactly like a forged one. It exists
because the Python SDK opens its standalone stream (GET) only when a session id was issued.
A request without the header is served as before (the id is never required).
"""

from __future__ import annotations

import re
import secrets

from starlette.types import Message, Scope, Send

from mcp_front.edge import responses
from mcp_front.edge.refusals import Refusal
from mcp_front.edge.request import EdgeRequest, header
from mcp_front.mcp.signed_state import BoundIds, InvalidState, StateSigner

MCP_SESSION_ID = "mcp-session-id"
# Not a credential (the bearer is checked on every request): the expiry only bounds how
# long a leaked id names a session. A client whose id expired gets 404 and initializes again.
SESSION_TTL_SECONDS = 30 * 86_400
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")


class SessionIds:
    def __init__(self, signer: StateSigner) -> None:
        self._ids = BoundIds(signer, "mcp-session")

    @staticmethod
    def _binding(edge: EdgeRequest) -> tuple[str, ...]:
        """The verified principal: an API key's own id, or the user behind an OAuth token,
        so a client whose access token is refreshed keeps its session."""
        if edge.access is None:
            raise RuntimeError("session ids are bound after the credential check")
        return (edge.access.principal_id, edge.org, edge.toolkit)

    def issue(self, edge: EdgeRequest, version: str) -> str | None:
        """A new id for this caller and toolkit at `version`; None for a version we cannot name."""
        if not _VERSION.fullmatch(version):
            return None
        subject = f"{version}~{secrets.token_urlsafe(12)}"
        return self._ids.issue(subject, self._binding(edge), SESSION_TTL_SECONDS)

    def version_of(self, session_id: str, edge: EdgeRequest) -> str:
        """The negotiated version an id valid for this caller and toolkit names; else InvalidState."""
        version, _, _ = self._ids.subject(session_id, self._binding(edge)).partition("~")
        return version


def issuing(send: Send, session_id: str) -> Send:
    """`send`, with the session id on a successful answer (the InitializeResult)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != MCP_SESSION_ID.encode()]
            message = {**message, "headers": [*headers, (MCP_SESSION_ID.encode(), session_id.encode())]}
        await send(message)

    return wrapped


def session_refusal(ids: SessionIds, edge: EdgeRequest, scope: Scope) -> Refusal | None:
    """After the credential check (a revoked credential is 401, never a session answer): an
    id this caller was not issued for this toolkit is 404, as the transport spec answers a
    session that ended (the client then initializes again); a protocol version other than
    the one the session negotiated is 400. None: no id, or a good one."""
    given = header(scope, MCP_SESSION_ID.encode())
    if not given:
        return None
    try:
        version = ids.version_of(given, edge)
    except InvalidState:
        reason = "unknown or expired session id"
        return Refusal("invalid", reason, responses.jsonrpc_error(404, -32600, "Session not found"))
    sent = header(scope, b"mcp-protocol-version")
    if sent and sent != version:
        reason = f"MCP-Protocol-Version does not match the session's ({version})"
        return Refusal("invalid", reason, responses.jsonrpc_error(400, -32600, f"Bad Request: {reason}"))
    return None
