"""The typed async client every other component uses (front, CLI, console, services).

Callers get one method per RPC and domain exceptions; the generated stubs stay behind
this module. Messages returned are the protobuf types, read-only by convention. This module
holds the hot path (PolicyService, batched authorize/complete); the AdminService and
TaskService methods live in admin_client.py and task_client.py, the connection and the
error mapping in rpc_channel.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import admin_pb2, policy_pb2, policy_pb2_grpc, tasks_pb2, types_pb2
from policy_service.admin_client import AdminRpcs, timestamp
from policy_service.batching import ITEM_RPCS, CallBatcher
from policy_service.observability.tracing import batch_item_client_span, set_item_code, tracer
from policy_service.rpc_channel import RpcChannel
from policy_service.status_codes import error_for
from policy_service.stream_pool import NOT_SENT, StreamPool
from policy_service.task_client import TaskRpcs
from policy_service.wire_enums import (
    APPROVAL_STATUS_NAMES,
    APPROVAL_STATUSES,
    PERMISSION_NAMES,
    PERMISSIONS,
    Permission,
    permission_of,
)

# Re-exported so callers never import generated modules.
__all__ = [
    "APPROVAL_STATUSES",
    "APPROVAL_STATUS_NAMES",
    "PERMISSIONS",
    "PERMISSION_NAMES",
    "Permission",
    "PolicyUnavailable",
    "RpcChannel",
    "permission_of",
    "timestamp",
]
Approval = types_pb2.Approval
AuditRecord = admin_pb2.AuditRecord
AuditDigest = admin_pb2.AuditDigest
Decision = policy_pb2.Decision
DECISION_ALLOW = policy_pb2.DECISION_ALLOW
DECISION_PENDING_APPROVAL = policy_pb2.DECISION_PENDING_APPROVAL
DECISION_DENIED = policy_pb2.DECISION_DENIED
DECISION_BLOCKED = policy_pb2.DECISION_BLOCKED
TaskState = tasks_pb2.TaskState


PolicyUnavailable = errors.PolicyUnavailable  # re-exported: callers catch it from here


def channel_tls(ca: str = "", client_cert: str = "", client_key: str = "") -> grpc.ChannelCredentials | None:
    """TLS toward the policy service when a CA is configured (mutual TLS with a client cert)."""
    if not ca:
        return None

    def read(path: str) -> bytes | None:
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    return grpc.ssl_channel_credentials(read(ca), read(client_key), read(client_cert))


class PolicyClient(AdminRpcs, TaskRpcs):
    """`credential` is the caller's own API key/JWT/operator token for admin RPCs;
    `service_token` is the service identity the hot-path PolicyService RPCs require."""

    def __init__(
        self,
        address: str,
        credential: str = "",
        timeout: float = 5.0,
        *,
        service_token: str = "",
        tls: grpc.ChannelCredentials | None = None,
        source: str = "",
        stream: bool = False,
        request_id: str = "",
        client_address: str = "",
        user_agent: str = "",
    ) -> None:
        """`stream`: send authorize/complete items on long-lived CallStream streams (ADR 0029),
        falling back to the unary/CallBatch RPCs when no stream takes an item. `request_id`,
        `client_address`, `user_agent`: the HTTP client's, for admin-action audit rows (the
        `service_token` vouches for them)."""
        self.channel = RpcChannel(
            address,
            credential,
            timeout,
            service_token=service_token,
            tls=tls,
            source=source,
            request_id=request_id,
            client_address=client_address,
            user_agent=user_agent,
        )
        self._batcher: CallBatcher | None = None
        self._streams = (
            StreamPool(address, self.channel.open_target, self.channel.service_metadata, timeout) if stream else None
        )

    @property
    def _policy(self) -> policy_pb2_grpc.PolicyServiceStub:
        return self.channel.stub(policy_pb2_grpc.PolicyServiceStub)

    async def close(self) -> None:
        if self._streams is not None:
            await self._streams.close()
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None
        await self.channel.close()

    async def __aenter__(self) -> PolicyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _call_batch(self, request: policy_pb2.CallBatchRequest) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        return self.channel.stream(self._policy.CallBatch, request)

    async def _unary_item(self, item: policy_pb2.CallBatchItem) -> policy_pb2.CallBatchResult:
        """A lone item as its own unary RPC (same server handler; errors raised as `_call` raises them)."""
        if item.WhichOneof("item") == "authorize":
            decision = await self.channel.call(self._policy.AuthorizeToolCall, item.authorize)
            return policy_pb2.CallBatchResult(authorize=decision)
        done = await self.channel.call(self._policy.CompleteToolCall, item.complete)
        return policy_pb2.CallBatchResult(complete=done)

    async def _send_item(self, item: policy_pb2.CallBatchItem) -> policy_pb2.CallBatchResult:
        """On a stream when one takes it, else batched (or unary when alone)."""
        if self._streams is not None:
            result = await self._streams.submit(item)
            if result is not NOT_SENT:
                return result
        if self._batcher is None:
            # With tracing on every item goes batched: its span is made here, not by the interceptor.
            self._batcher = CallBatcher(self._call_batch, single=self._unary_item if tracer() is None else None)
        return await self._batcher.submit(item)

    async def _batched(self, item: policy_pb2.CallBatchItem) -> policy_pb2.CallBatchResult:
        """One authorize/complete item, sent with concurrent callers' items; errors as its
        unary RPC would raise them."""
        active = tracer()
        if active is None:
            result = await self._send_item(item)
        else:
            method = ITEM_RPCS[item.WhichOneof("item") or ""]
            with batch_item_client_span(active, method, item.trace_context) as span:
                result = await self._send_item(item)
                set_item_code(span, result.error.code if result.WhichOneof("result") == "error" else 0)
        if result.WhichOneof("result") == "error":
            kind = error_for(result.error.code)
            raise kind(result.error.message, result.error.reason or None)
        return result

    # --- hot path -------------------------------------------------------------------
    async def list_tools(
        self,
        credential: str,
        org: str,
        toolkit: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        names: Sequence[str] = (),
    ) -> policy_pb2.ListToolsResponse:
        """Every visible tool (page_size 0), one page of them (pass the response's
        `next_page_token` back for the next), or only the tools in `names`."""
        request = policy_pb2.ListToolsRequest(
            credential=credential,
            org_slug=org,
            toolkit_slug=toolkit,
            page_size=page_size,
            page_token=page_token,
            names=list(names),
        )
        return await self._call(self._policy.ListTools, request)

    async def authorize_tool_call(
        self,
        credential: str,
        org: str,
        toolkit: str,
        tool: str,
        arguments_json: str,
        *,
        request_id: str = "",
        client_address: str = "",
        user_agent: str = "",
        protocol_version: str = "",
    ) -> policy_pb2.AuthorizeToolCallResponse:
        meta = types_pb2.RequestMeta(
            request_id=request_id,
            client_address=client_address,
            user_agent=user_agent,
            protocol_version=protocol_version,
        )
        item = policy_pb2.AuthorizeToolCallRequest(
            credential=credential,
            org_slug=org,
            toolkit_slug=toolkit,
            tool=tool,
            arguments_json=arguments_json,
            meta=meta,
        )
        return (await self._batched(policy_pb2.CallBatchItem(authorize=item))).authorize

    async def complete_tool_call(
        self, call_id: str, status: str, response_json: str = "", error: str = "", duration_ms: float = 0.0
    ) -> None:
        item = policy_pb2.CompleteToolCallRequest(
            call_id=call_id, status=status, response_json=response_json, error=error, duration_ms=duration_ms
        )
        await self._batched(policy_pb2.CallBatchItem(complete=item))

    async def get_approval_status(self, credential: str, approval_id: str) -> types_pb2.Approval:
        response: policy_pb2.GetApprovalStatusResponse = await self._call(
            self._policy.GetApprovalStatus,
            policy_pb2.GetApprovalStatusRequest(credential=credential, approval_id=approval_id),
        )
        return response.approval

    async def record_request(
        self,
        credential: str,
        org: str,
        toolkit: str,
        method: str,
        *,
        tool: str = "",
        request_json: str = "",
        response_json: str = "",
        status: str = "ok",
        error: str = "",
        duration_ms: float = 0.0,
        request_id: str = "",
        client_address: str = "",
        user_agent: str = "",
        protocol_version: str = "",
    ) -> str:
        meta = types_pb2.RequestMeta(
            request_id=request_id,
            client_address=client_address,
            user_agent=user_agent,
            protocol_version=protocol_version,
        )
        response: policy_pb2.RecordRequestResponse = await self._call(
            self._policy.RecordRequest,
            policy_pb2.RecordRequestRequest(
                credential=credential,
                org_slug=org,
                toolkit_slug=toolkit,
                method=method,
                tool=tool,
                request_json=request_json,
                response_json=response_json,
                status=status,
                error=error,
                duration_ms=duration_ms,
                meta=meta,
            ),
        )
        return response.call_id

    # --- catalogue items (resources, resource templates, prompts) -------------------
    async def list_items(self, credential: str, org: str, toolkit: str, kind: str) -> policy_pb2.ListItemsResponse:
        return await self._call(
            self._policy.ListItems,
            policy_pb2.ListItemsRequest(credential=credential, org_slug=org, toolkit_slug=toolkit, kind=kind),
        )

    async def authorize_item(
        self,
        credential: str,
        org: str,
        toolkit: str,
        kind: str,
        name: str,
        method: str,
        params_json: str,
        *,
        request_id: str = "",
        client_address: str = "",
        user_agent: str = "",
        protocol_version: str = "",
    ) -> policy_pb2.AuthorizeItemResponse:
        """Decides one request about an item and writes its audit row; finish it with complete_tool_call."""
        meta = types_pb2.RequestMeta(
            request_id=request_id,
            client_address=client_address,
            user_agent=user_agent,
            protocol_version=protocol_version,
        )
        request = policy_pb2.AuthorizeItemRequest(
            credential=credential,
            org_slug=org,
            toolkit_slug=toolkit,
            kind=kind,
            name=name,
            method=method,
            params_json=params_json,
            meta=meta,
        )
        return await self._call(self._policy.AuthorizeItem, request)
