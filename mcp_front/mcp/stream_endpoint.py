"""GET on a toolkit endpoint: the client's standalone stream (initialize era).

Reached after the edge's host, bearer, limit and credential checks. The caller's org
(which names the tenant scope of upstream sessions) comes from the policy service's
ListItems, which also re-checks the credential; the opening is audited (method `GET`).
2026-07-28 clients have no standalone stream (their updates travel on
`subscriptions/listen`), so a GET naming that era is 405 as before.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from mcp_front.edge import responses
from mcp_front.edge.checks import edge_of
from mcp_front.edge.refusals import RefusalRecorder
from mcp_front.edge.request import header
from mcp_front.mcp.audit import audit_request
from mcp_front.mcp.client_stream import ClientStream
from mcp_front.mcp.items import tenant_scope
from mcp_front.mcp.sdk import MODERN_PROTOCOL_VERSIONS
from mcp_front.mcp.standalone import StreamHub
from policy_service import errors
from policy_service.client import PolicyClient


class StreamEndpoint:
    def __init__(self, policy: PolicyClient, hub: StreamHub, recorder: RefusalRecorder) -> None:
        self._policy, self._hub, self._recorder = policy, hub, recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = edge_of(scope)
        if header(scope, b"mcp-protocol-version") in MODERN_PROTOCOL_VERSIONS:
            await self._recorder.record(edge, "invalid", "no standalone stream on 2026-07-28", method="GET")
            await Response(status_code=405, headers={"Allow": "POST"})(scope, receive, send)
            return
        if "text/event-stream" not in header(scope, b"accept"):
            await self._recorder.record(edge, "invalid", "a GET must accept text/event-stream", method="GET")
            await JSONResponse({"error": "a GET must accept text/event-stream"}, status_code=406)(scope, receive, send)
            return
        try:
            listed = await self._policy.list_items(edge.token, edge.org, edge.toolkit, "resource")
        except errors.Unauthenticated as exc:
            await responses.unauthorized(exc.message, edge.resource_metadata)(scope, receive, send)
            return
        except errors.NotFound:
            await responses.not_found()(scope, receive, send)
            return
        except errors.PolicyError:
            await responses.policy_unavailable()(scope, receive, send)
            return
        tenant = tenant_scope(edge, listed)
        org = edge.access.principal_org if edge.access is not None else ""
        if reason := self._hub.refusal(edge.token, tenant, org):
            await self._recorder.record(edge, "rate_limited", reason, method="GET")
            await responses.too_many_requests(5.0, reason)(scope, receive, send)
            return
        opened = {"stream": "standalone"}
        if not await audit_request(
            self._policy, edge, "GET", {}, opened, "ok", "", 0.0, edge.protocol_version, raise_mcp_error=False
        ):
            await responses.policy_unavailable()(scope, receive, send)
            return
        stream = ClientStream(edge.token, f"{edge.org}/{edge.toolkit}", tenant, org=org)
        await self._hub.serve(stream, receive, send)
