"""Reading gRPC call metadata."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from policy_service.errors import PermissionDenied, Unauthenticated
from policy_service.identity.authenticator import Authenticator
from policy_service.identity.principal import Principal
from policy_service.identity.services import Scope, ServiceCaller, ServiceDirectory


def bearer(context: grpc.aio.ServicerContext) -> str:
    """The token of the call's `authorization: Bearer` metadata, or ''."""
    for key, found in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(found, str):
            scheme, _, token = found.partition(" ")
            if scheme.lower() == "bearer":
                return token
    return ""


ADMIN_SOURCES = frozenset({"api", "console", "cli", "grpc"})
# The service identity vouching for the facts an admin call states (the front's): admin RPCs
# carry the caller's own credential in `authorization`, so the service token rides beside it.
SERVICE_KEY = "x-monomcp-service"
REQUEST_ID_KEY = "x-request-id"
CLIENT_ADDRESS_KEY = "x-monomcp-client-address"
USER_AGENT_KEY = "x-monomcp-user-agent"
SOURCE_KEY = "x-monomcp-source"


def value(context: grpc.aio.ServicerContext, name: str) -> str:
    """The call's first `name` metadata value, or ''."""
    for key, found in context.invocation_metadata() or ():
        if key == name and isinstance(found, str):
            return found
    return ""


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What an audit row records about where an admin call or sign-in came from."""

    request_id: str
    client_address: str
    user_agent: str
    source: str  # api, console, cli or grpc


async def _vouched(context: grpc.aio.ServicerContext, services: ServiceDirectory) -> bool:
    token = value(context, SERVICE_KEY) or bearer(context)  # sign-in RPCs carry it as the bearer
    try:
        (await services.authenticate(token)).require(Scope.RECORD)
    except (Unauthenticated, PermissionDenied):
        return False
    return True


async def call_facts(
    context: grpc.aio.ServicerContext, services: ServiceDirectory, *, client_address: str = "", user_agent: str = ""
) -> CallFacts:
    """The one rule for caller-stated request facts (ADR 0028, 0035): the request id, client
    address, user agent and channel a call states are believed only from a service identity
    with the `record` scope (the front, for its HTTP client). Anyone else's row gets its gRPC
    peer, no request id or user agent, and the channel `grpc` (or `cli`, which claims nothing
    more). `client_address`/`user_agent` are a sign-in request's own fields."""
    peer = (context.peer() or "")[:64]
    stated_source = value(context, SOURCE_KEY)
    facts = (
        value(context, REQUEST_ID_KEY),
        client_address or value(context, CLIENT_ADDRESS_KEY),
        user_agent or value(context, USER_AGENT_KEY),
    )
    if (any(facts) or stated_source in ("api", "console")) and await _vouched(context, services):
        request_id, address, agent = facts
        source = stated_source if stated_source in ADMIN_SOURCES else "grpc"
        return CallFacts(request_id[:64], address[:64] or peer, agent[:512], source)
    return CallFacts("", peer, "", "cli" if stated_source == "cli" else "grpc")


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
