"""Admin RPCs for console sessions: sign-in exchanges an admin credential for an opaque
session token; sign-out revokes it. Identity decisions stay in the authenticator."""

from __future__ import annotations

import grpc

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.api import convert
from policy_service.api.admin_base import AdminBase
from policy_service.api.errors import translated
from policy_service.errors import Unauthenticated


def _bearer(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    raise Unauthenticated("missing `authorization: Bearer` metadata", "MISSING_CREDENTIAL")


class SessionRpcs(AdminBase):
    @translated
    async def CreateConsoleSession(
        self, request: admin_pb2.CreateConsoleSessionRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateConsoleSessionResponse:
        issued = await self._gate.authenticator.open_console_session(_bearer(context), request.ttl_seconds)
        return admin_pb2.CreateConsoleSessionResponse(
            token=issued.token,
            session_id=issued.session_id,
            expires_at=convert.ts(issued.expires_at),
            principal=convert.principal(issued.principal),
        )

    @translated
    async def EndConsoleSession(
        self, request: admin_pb2.EndConsoleSessionRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.EndConsoleSessionResponse:
        if not await self._gate.authenticator.end_console_session(_bearer(context)):
            raise Unauthenticated("no such console session", "SESSION_INVALID")
        return admin_pb2.EndConsoleSessionResponse()
