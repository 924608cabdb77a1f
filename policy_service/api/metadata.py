"""Reading gRPC call metadata."""

from __future__ import annotations

import grpc

from policy_service.errors import Unauthenticated
from policy_service.identity.authenticator import Authenticator
from policy_service.identity.principal import Principal
from policy_service.identity.services import Scope, ServiceCaller, ServiceDirectory


def bearer(context: grpc.aio.ServicerContext) -> str:
    """The token of the call's `authorization: Bearer` metadata, or ''."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token
    return ""


ADMIN_SOURCES = frozenset({"api", "console", "cli", "grpc"})


def source(context: grpc.aio.ServicerContext) -> str:
    """The channel the caller says it is (`x-monomcp-source`: api, console, cli), else grpc."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-monomcp-source" and value in ADMIN_SOURCES:
            return str(value)
    return "grpc"


async def service_caller(context: grpc.aio.ServicerContext, services: ServiceDirectory, scope: Scope) -> ServiceCaller:
    """The calling service identity, if its credential holds `scope`: the port is not a trust
    boundary, the credential is."""
    return (await services.authenticate(bearer(context))).require(scope)


async def admin_principal(context: grpc.aio.ServicerContext, authenticator: Authenticator) -> Principal:
    """The org member or operator an admin RPC acts for (UNAUTHENTICATED without a bearer)."""
    token = bearer(context)
    if not token:
        raise Unauthenticated("missing `authorization: Bearer` metadata", "MISSING_CREDENTIAL")
    return await authenticator.authenticate_admin(token)
