"""PolicyService RPCs for resources, resource templates and prompts. Translation only;
ItemGate decides. Mixed into PolicyServicer, so they share its service-identity checks."""

from __future__ import annotations

import grpc

from policy_service._generated.monomcp.policy.v1 import policy_pb2, types_pb2
from policy_service.api import convert
from policy_service.api.errors import translated
from policy_service.api.metadata import service_caller
from policy_service.gate import Gate, RequestFacts
from policy_service.identity.services import Scope, ServiceDirectory
from policy_service.item_gate import ItemGate, params_of
from policy_service.permissions.items import ResolvedItem

_DECISIONS = {"allow": policy_pb2.DECISION_ALLOW, "blocked": policy_pb2.DECISION_BLOCKED}


def item_info(item: ResolvedItem) -> policy_pb2.ItemInfo:
    return policy_pb2.ItemInfo(
        kind=item.kind,
        name=item.name,
        spec_json=item.spec_json,
        permission=convert.PERMISSION_TO_PB[item.effective.permission],
        permission_source=item.effective.source,
    )


class ItemRpcs:
    _gate: Gate
    _services: ServiceDirectory

    @property
    def _items(self) -> ItemGate:
        return ItemGate(self._gate)

    @translated
    async def ListItems(
        self, request: policy_pb2.ListItemsRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.ListItemsResponse:
        await service_caller(context, self._services, Scope.READ)
        principal, items = await self._items.list_items(
            request.credential, request.org_slug, request.toolkit_slug, request.kind
        )
        return policy_pb2.ListItemsResponse(principal=convert.principal(principal), items=[item_info(i) for i in items])

    @translated
    async def AuthorizeItem(
        self, request: policy_pb2.AuthorizeItemRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.AuthorizeItemResponse:
        service = await service_caller(context, self._services, Scope.EXECUTE)
        meta = request.meta
        result = await self._items.authorize(
            service,
            request.credential,
            request.org_slug,
            request.toolkit_slug,
            request.kind,
            request.name,
            request.method or "resources/read",
            params_of(request.params_json),
            RequestFacts(meta.request_id, meta.client_address, meta.user_agent, meta.protocol_version),
        )
        response = policy_pb2.AuthorizeItemResponse(
            decision=_DECISIONS[result.decision],
            call_id=result.call_id,
            permission=convert.PERMISSION_TO_PB.get(result.permission, types_pb2.PERMISSION_UNSPECIFIED),
            message=result.message,
            principal=convert.principal(result.principal),
        )
        if result.item is not None:
            response.item.CopyFrom(item_info(result.item))
        if result.decision == "allow" and result.view is not None:
            response.backend.CopyFrom(convert.backend(result.view))
        return response
