"""`subscriptions/listen` (2026-07-28): that era's stream of list changes and resource updates
(docs/adr/0030-session-ids-and-long-streams.md).

One listen request is one stream on the standalone hub (`standalone.StreamHub`), fed by
what it already hears: initialize-era HTTP backends' standalone streams and stdio
processes. Each URI in `resourceSubscriptions` is decided, audited and forwarded exactly
as a `resources/subscribe` (ADR 0025); a URI refused (blocked, unknown, needs approval, or
the backend refused it) is left out of the acknowledgment, which the spec defines as "the
subset the server agreed to honor". The subscriptions end with the stream.
"""

from __future__ import annotations

from typing import Any

from mcp_front.backends.negotiation import LISTEN
from mcp_front.mcp.audit import audit_request
from mcp_front.mcp.client_stream import ClientStream, Era
from mcp_front.mcp.context import GatewayRequest, from_handler_context
from mcp_front.mcp.items import POLICY_UNAVAILABLE, ItemHandlers, tenant_scope
from mcp_front.mcp.sdk import (
    SUBSCRIPTION_ID_META_KEY,
    MCPError,
    ResourceUpdated,
    ServerRequestContext,
    event_from_wire,
    event_to_notification,
    types,
)
from mcp_front.mcp.standalone import MAX_URIS_PER_SUBSCRIBER, StreamHub
from policy_service import errors
from policy_service.client import PolicyClient

UPDATED = "notifications/resources/updated"
# LISTEN is audited here when the stream opens (the generic audit would write at its end).


def _kinds(wanted: types.SubscriptionFilter) -> set[str]:
    flags = {
        "notifications/tools/list_changed": wanted.tools_list_changed,
        "notifications/prompts/list_changed": wanted.prompts_list_changed,
        "notifications/resources/list_changed": wanted.resources_list_changed,
    }
    return {method for method, flag in flags.items() if flag}


class ListenHandler:
    def __init__(self, policy: PolicyClient, items: ItemHandlers, hub: StreamHub) -> None:
        self._policy, self._items, self._hub = policy, items, hub

    async def _scope(self, req: GatewayRequest) -> str:
        """The tenant scope (the caller's org from the policy service, which re-checks the credential)."""
        try:
            listed = await self._policy.list_items(req.credential, req.org, req.toolkit, "resource")
        except errors.PolicyError:
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
        return tenant_scope(req, listed)

    async def _subscribe(self, ctx: ServerRequestContext[Any], owner: str, wanted: list[str], into: list[str]) -> None:
        """Appends to `into` each URI the policy and the backend accepted (as it is accepted, so
        the caller's cleanup ends exactly those even if this is interrupted)."""
        for uri in dict.fromkeys(wanted):
            if not self._hub.may_subscribe(owner) or len(into) >= MAX_URIS_PER_SUBSCRIBER:
                return

            def remember(scope: str, uri: str = uri) -> None:
                self._hub.subscribe(owner, scope, uri, Era.MODERN)
                into.append(uri)

            try:
                params = types.SubscribeRequestParams(uri=uri)
                await self._items.run(ctx, "resource", uri, "resources/subscribe", params, after=remember)
            except MCPError as exc:
                if exc.error.message == POLICY_UNAVAILABLE:
                    raise
                # refused like a read, or by the backend: not honored

    async def __call__(self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams) -> Any:
        req = from_handler_context(ctx)
        if ctx.request_id is None:
            raise MCPError(types.INVALID_REQUEST, "subscriptions/listen requires a request id")
        scope, owner = await self._scope(req), req.credential
        org = req.access.principal_org
        if reason := self._hub.refusal(owner, scope, org):
            raise MCPError(types.INVALID_REQUEST, reason[0].upper() + reason[1:])
        wanted = params.notifications
        kinds = _kinds(wanted)
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: ctx.request_id}
        uris: list[str] = []
        try:
            await self._subscribe(ctx, owner, list(wanted.resource_subscriptions or []), uris)
            honored = types.SubscriptionFilter(
                tools_list_changed=True if "notifications/tools/list_changed" in kinds else None,
                prompts_list_changed=True if "notifications/prompts/list_changed" in kinds else None,
                resources_list_changed=True if "notifications/resources/list_changed" in kinds else None,
                resource_subscriptions=list(uris) or None,
            )
            acknowledged = honored.model_dump(mode="json", by_alias=True, exclude_none=True)
            await audit_request(
                self._policy,
                req,
                LISTEN,
                dict(ctx.params or {}),
                {"stream": LISTEN, "notifications": acknowledged},
                "ok",
                "",
                0.0,
                ctx.protocol_version or req.protocol_version,
            )
            kinds |= {UPDATED} if uris else set()
            stream = ClientStream(owner, f"{req.org}/{req.toolkit}", scope, frozenset(kinds), Era.MODERN, org)
            with self._hub.attached(stream):
                ack = types.SubscriptionsAcknowledgedNotificationParams(notifications=honored, _meta=meta)
                await ctx.session.send_notification(
                    types.SubscriptionsAcknowledgedNotification(params=ack), related_request_id=ctx.request_id
                )
                while not stream.overflowed.is_set():  # a client that does not read loses its stream
                    message = await stream.get()
                    event = event_from_wire(str(message.get("method")), message.get("params"))
                    if event is None or (isinstance(event, ResourceUpdated) and event.uri not in uris):
                        continue
                    await ctx.session.send_notification(
                        event_to_notification(event, meta), related_request_id=ctx.request_id
                    )
        finally:
            for uri in uris:
                self._hub.end_subscription(owner, scope, uri)
        return types.SubscriptionsListenResult(_meta=meta)
