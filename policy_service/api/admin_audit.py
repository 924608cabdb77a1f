"""Every AdminService action leaves an audit row, written by one interceptor (the way
Cerbos writes its access log) instead of by each servicer.

Reads (WhoAmI, List*, Get*, Watch*, Query*, Verify*, Export*) are not actions; every other
RPC is, including ones added later. The row names the caller, the RPC, the redacted request,
the outcome and the channel (`x-monomcp-source` metadata: api, console, cli; default grpc),
and what changed: the object's snapshot before and after the servicer ran (admin_snapshots.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from policy_service.api.admin_snapshots import Snapshots, change
from policy_service.api.errors import abort_for
from policy_service.api.metadata import bearer, call_facts
from policy_service.errors import PolicyError
from policy_service.gate import Gate, RequestFacts
from policy_service.identity.principal import Principal
from policy_service.identity.services import ServiceDirectory
from policy_service.notifications.channels import shown_url

log = logging.getLogger(__name__)
_ADMIN_PREFIX = "/monomcp.policy.v1.AdminService/"
_READS = ("WhoAmI", "List", "Get", "Watch", "Query", "Verify", "Export")
# Services whose RPCs are admin actions, each with the name prefixes of its reads
# (DomainService's VerifyDomain changes state: it is an action).
_AUDITED: dict[str, tuple[str, ...]] = {_ADMIN_PREFIX: _READS, "/monomcp.policy.v1.DomainService/": ("List",)}
# Password sign-ins write their own rows (they must also count failures for brute-force limits).
# ApplyPolicy records its changes rather than the file it was sent (ADR 0021).
_SELF_AUDITED = frozenset({"Login", "CreatePasswordConsoleSession", "ApplyPolicy"})


class _RecordBeforeAbort:
    """The servicer context an audited action sees: gRPC sends a refusal's status the moment
    the servicer aborts, so the row is written first. Otherwise the caller could hear of the
    refusal (and query the audit) before its row exists, or a crash could lose the row."""

    def __init__(self, context: grpc.aio.ServicerContext, record: Callable[[str, str], Awaitable[None]]) -> None:
        self._context = context
        self._record = record
        self.recorded = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def _record_once(self, code: grpc.StatusCode, details: str) -> None:
        if not self.recorded:
            self.recorded = True
            await self._record(code.name.lower(), details or code.name.lower())

    async def abort_with_status(self, status: grpc.Status) -> None:
        await self._record_once(status.code, status.details)
        await self._context.abort_with_status(status)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        await self._record_once(code, details)
        await self._context.abort(code, details, trailing_metadata)


class AdminAuditInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, gate: Gate, snapshots: Snapshots, services: ServiceDirectory) -> None:
        self._gate = gate
        self._snapshots = snapshots
        self._services = services

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full: str = handler_call_details.method or ""
        prefix = next((p for p in _AUDITED if full.startswith(p)), "")
        if handler is None or handler.unary_unary is None or not prefix:
            return handler
        name = full[len(prefix) :]
        if name.startswith(_AUDITED[prefix]) or name in _SELF_AUDITED:
            return handler
        inner = handler.unary_unary

        async def guarded(request: Message, context: grpc.aio.ServicerContext) -> Any:
            """The interceptor's own faults leave as INTERNAL, never as the exception's text."""
            try:
                return await audited(request, context)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:
                await abort_for(context, exc, name)

        async def audited(request: Message, context: grpc.aio.ServicerContext) -> Any:
            principal = await self._caller(context)  # before: sign-out ends the very credential
            org = self._snapshots.org(name, request, principal)
            before, before_unreadable = None, False
            if org is not None and principal is not None:
                try:
                    before = await self._snapshots.read(name, request, None, org, principal)
                except Exception:  # unvalidated input (a NUL Postgres refuses) or a fault: the
                    # servicer still validates and answers; the row says the before is unknown
                    log.warning("could not read %s's object before the change", name, exc_info=True)
                    before_unreadable = True

            async def record(status: str, error: str, response: Any = None) -> None:
                diff = None
                if org is not None and principal is not None:
                    diff = await self._change(
                        name, request, principal, org, before, response if status == "ok" else None
                    )
                    if before_unreadable:
                        diff = diff | {"before_unreadable": True}
                await self._record(context, principal, name, request, status, error, diff)

            recording = _RecordBeforeAbort(context, record)
            try:
                response = await inner(request, recording)
            except BaseException as exc:
                if not recording.recorded:
                    code = context.code()
                    await record(
                        code.name.lower() if code is not None else "error", context.details() or type(exc).__name__
                    )
                raise
            await record("ok", "", response)
            return response

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _change(
        self, name: str, request: Message, principal: Principal, org: str, before: Any, response: Any
    ) -> dict[str, Any]:
        """Before/after of a finished action (a response); only the before of one that was not."""
        if response is None:
            return change(before, None, False)
        try:
            return change(before, await self._snapshots.read(name, request, response, org, principal), True)
        except Exception:  # the change is made: its row must still be written
            log.exception("could not read %s's object after the change", name)
            return change(before, None, False) | {"after_unreadable": True}

    async def _caller(self, context: grpc.aio.ServicerContext) -> Principal | None:
        try:
            return await self._gate.authenticator.authenticate_admin(bearer(context))
        except PolicyError:
            return None

    async def _record(
        self,
        context: grpc.aio.ServicerContext,
        principal: Principal | None,
        name: str,
        request: Message,
        status: str,
        error: str,
        diff: dict[str, Any] | None,
    ) -> None:
        payload = MessageToDict(request, preserving_proto_field_name=True)
        if name == "CreateNotificationChannel" and "target" in payload:
            # A webhook's URL is its credential (anyone holding a Slack URL may post): the row
            # keeps what the channel's own view shows, as for every other reader.
            payload["target"] = shown_url(str(payload.get("kind", "")), str(payload["target"]))
        await record_action(self._gate, self._services, context, principal, name, payload, status, error, diff)


async def record_action(
    gate: Gate,
    services: ServiceDirectory,
    context: grpc.aio.ServicerContext,
    principal: Principal | None,
    name: str,
    payload: dict[str, Any],
    status: str,
    error: str,
    diff: dict[str, Any] | None = None,
) -> None:
    """The admin-action row, with the channel and request facts the call states (believed
    only from a recording service identity: `metadata.call_facts`), and the before/after of
    what the action changed when known."""
    stated = await call_facts(context, services)
    facts = RequestFacts(
        request_id=stated.request_id, client_address=stated.client_address, user_agent=stated.user_agent
    )
    # The operator acts on other orgs: file the row under the org it acted on.
    org = str(payload.get("org_slug", "")) if principal is not None and principal.is_operator else None
    row = gate.admin_action_row(principal, stated.source, f"admin/{name}", payload, status, error, facts, org, diff)
    await gate.record_admin_action(row)
