"""PolicyService: the hot-path RPCs. Translation only; the Gate decides.

Every RPC first proves the caller is a service identity with the scope it needs: the port
is not a trust boundary, the credential is."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.rpc import code_pb2

from policy_service._generated.monomcp.policy.v1 import policy_pb2, policy_pb2_grpc, types_pb2
from policy_service.api import convert
from policy_service.api.call_stream import OpenStreams, StreamSession, merged
from policy_service.api.errors import abort_for, code_of, translated
from policy_service.api.item_rpcs import ItemRpcs
from policy_service.api.metadata import service_caller
from policy_service.api.tool_wire import ToolWire
from policy_service.batching import ITEM_RPCS
from policy_service.errors import InvalidArgument, PolicyError
from policy_service.gate import Gate, RequestFacts
from policy_service.identity.services import Scope, ServiceCaller, ServiceDirectory
from policy_service.observability.metrics import PolicyMetrics
from policy_service.observability.tracing import batch_item_server_span, set_item_code, tracer
from policy_service.status_codes import status_name

_DECISIONS = {
    "allow": policy_pb2.DECISION_ALLOW,
    "pending_approval": policy_pb2.DECISION_PENDING_APPROVAL,
    "denied": policy_pb2.DECISION_DENIED,
    "blocked": policy_pb2.DECISION_BLOCKED,
}


# gRPC status names by number, as the unary metrics interceptor labels them.

log = logging.getLogger(__name__)

# Items one CallBatch may carry (the client sends at most this many).
MAX_BATCH_ITEMS = 1024


def _facts(meta: types_pb2.RequestMeta) -> RequestFacts:
    return RequestFacts(meta.request_id, meta.client_address, meta.user_agent, meta.protocol_version)


class PolicyServicer(ItemRpcs, policy_pb2_grpc.PolicyServiceServicer):
    def __init__(self, gate: Gate, services: ServiceDirectory, metrics: PolicyMetrics | None = None) -> None:
        self._gate = gate
        self._services = services
        self._metrics = metrics
        self._wire = ToolWire()
        self.streams = OpenStreams()
        # Labelled metric children, looked up once instead of per item.
        self._item_timers: dict[tuple[str, str], Any] = {}
        self._decision_counters: dict[str, Any] = {}

    @translated
    async def ListTools(
        self, request: policy_pb2.ListToolsRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.ListToolsResponse:
        await service_caller(context, self._services, Scope.READ)
        if request.names:
            principal, view, listed = await self._gate.list_named(
                request.credential, request.org_slug, request.toolkit_slug, list(request.names)
            )
            next_token = ""
        else:
            principal, view, listed, next_token = await self._gate.list_page(
                request.credential, request.org_slug, request.toolkit_slug, request.page_size, request.page_token
            )
        response = self._wire.response(listed)
        response.principal.CopyFrom(convert.principal(principal))
        response.toolkit_name = view.name
        response.toolkit_description = view.description
        response.next_page_token = next_token
        return response

    @translated
    async def AuthorizeToolCall(
        self, request: policy_pb2.AuthorizeToolCallRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.AuthorizeToolCallResponse:
        return await self._authorize(await service_caller(context, self._services, Scope.EXECUTE), request)

    @translated
    async def CompleteToolCall(
        self, request: policy_pb2.CompleteToolCallRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.CompleteToolCallResponse:
        return await self._complete(await service_caller(context, self._services, Scope.EXECUTE), request)

    async def CallBatch(
        self, request: policy_pb2.CallBatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        try:
            service = await service_caller(context, self._services, Scope.EXECUTE)
            if len(request.items) > MAX_BATCH_ITEMS:
                raise InvalidArgument(f"a batch carries at most {MAX_BATCH_ITEMS} items", "BATCH_TOO_LARGE")
        except Exception as exc:
            await abort_for(context, exc, "CallBatch")
            return
        if len(request.items) == 1:  # the c=1 case: no task, no wait set (ADR 0024)
            response = policy_pb2.CallBatchResponse()
            await self._batch_item(service, 0, request.items[0], response.results.add())
            yield response
            return
        # Decided concurrently, so their audit rows share the audit log's group commit; answered
        # as they finish, those finished together in one message.
        pending = {
            asyncio.ensure_future(self._one_result(service, index, item)) for index, item in enumerate(request.items)
        }
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                yield merged([task.result() for task in done])
        finally:
            for task in pending:
                task.cancel()

    async def _one_result(
        self, service: ServiceCaller, index: int, item: policy_pb2.CallBatchItem
    ) -> policy_pb2.CallBatchResponse:
        """One item's answer in a message of its own (sent as is when it finishes alone)."""
        response = policy_pb2.CallBatchResponse()
        await self._batch_item(service, index, item, response.results.add())
        return response

    async def CallStream(
        self, request_iterator: AsyncIterator[policy_pb2.CallBatchRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        async for response in StreamSession(self._services, self._batch_item, context, self.streams).run(
            request_iterator
        ):
            yield response

    async def _batch_item(
        self, service: ServiceCaller, index: int, item: policy_pb2.CallBatchItem, result: policy_pb2.CallBatchResult
    ) -> None:
        """One item, timed and traced as its unary RPC would have been; its answer is written
        into `result`, already in the message that carries it (no copy per item)."""
        started = time.perf_counter()
        active = tracer()
        kind = item.WhichOneof("item")
        if active is None or kind is None:
            await self._decide_item(service, index, item, result)
        else:
            with batch_item_server_span(active, ITEM_RPCS[kind], item.trace_context) as span:
                await self._decide_item(service, index, item, result)
                if result.WhichOneof("result") == "error":
                    set_item_code(span, result.error.code)
        if self._metrics is not None and kind is not None:
            failed = result.WhichOneof("result") == "error"
            key = (kind, status_name(result.error.code) if failed else "OK")
            timer = self._item_timers.get(key)
            if timer is None:  # a labelled child per (method, code), looked up once
                timer = self._item_timers[key] = self._metrics.rpc_seconds.labels(
                    ITEM_RPCS[kind].rsplit("/", 1)[-1], key[1]
                )
            timer.observe(time.perf_counter() - started)

    async def _decide_item(
        self, service: ServiceCaller, index: int, item: policy_pb2.CallBatchItem, result: policy_pb2.CallBatchResult
    ) -> None:
        result.index = index
        try:
            kind = item.WhichOneof("item")
            if kind == "authorize":
                await self._authorize(service, item.authorize, result.authorize)
                return
            if kind == "complete":
                await self._complete(service, item.complete)
                result.complete.SetInParent()
                return
            raise InvalidArgument("empty batch item", "EMPTY_ITEM")
        except PolicyError as exc:
            error = policy_pb2.ItemError(code=code_of(exc), message=exc.message, reason=exc.reason)
        except Exception:
            log.exception("unhandled error in a CallBatch item")
            error = policy_pb2.ItemError(code=code_pb2.INTERNAL, message="internal error", reason="INTERNAL")
        result.error.CopyFrom(error)  # a oneof: clears whatever was filled before the failure

    async def _authorize(
        self,
        service: ServiceCaller,
        request: policy_pb2.AuthorizeToolCallRequest,
        response: policy_pb2.AuthorizeToolCallResponse | None = None,
    ) -> policy_pb2.AuthorizeToolCallResponse:
        """The decision, written into `response` (a batch result's own field) or a new message."""
        result = await self._gate.authorize(
            service,
            request.credential,
            request.org_slug,
            request.toolkit_slug,
            request.tool,
            request.arguments_json,
            _facts(request.meta),
        )
        if self._metrics is not None:
            counter = self._decision_counters.get(result.decision)
            if counter is None:
                counter = self._decision_counters[result.decision] = self._metrics.decisions.labels(result.decision)
            counter.inc()
        if response is None:
            response = policy_pb2.AuthorizeToolCallResponse()
        response.decision = _DECISIONS[result.decision]
        response.call_id = result.call_id
        response.permission = convert.PERMISSION_TO_PB.get(result.permission, types_pb2.PERMISSION_UNSPECIFIED)
        response.message = result.message
        convert.fill_principal(response.principal, result.principal)
        if result.approval is not None:
            response.approval.CopyFrom(convert.approval(result.approval))
        if result.decision == "allow" and result.view is not None:
            convert.fill_backend(response.backend, result.view)
        return response

    async def _complete(
        self, service: ServiceCaller, request: policy_pb2.CompleteToolCallRequest
    ) -> policy_pb2.CompleteToolCallResponse:
        await self._gate.complete(
            service, request.call_id, request.status, request.response_json, request.error, request.duration_ms
        )
        return policy_pb2.CompleteToolCallResponse()

    @translated
    async def GetApprovalStatus(
        self, request: policy_pb2.GetApprovalStatusRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.GetApprovalStatusResponse:
        await service_caller(context, self._services, Scope.READ)
        record = await self._gate.approval_status(request.credential, request.approval_id)
        return policy_pb2.GetApprovalStatusResponse(approval=convert.approval(record))

    @translated
    async def RecordRequest(
        self, request: policy_pb2.RecordRequestRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.RecordRequestResponse:
        service = await service_caller(context, self._services, Scope.RECORD)
        try:
            payload = json.loads(request.request_json) if request.request_json else None
        except ValueError:
            payload = request.request_json
        call_id = await self._gate.record(
            service,
            request.credential,
            request.org_slug,
            request.toolkit_slug,
            request.method,
            request.tool,
            payload,
            request.response_json,
            request.status or "ok",
            request.error,
            request.duration_ms,
            _facts(request.meta),
        )
        return policy_pb2.RecordRequestResponse(call_id=call_id)
