"""Reading gRPC call metadata."""

from __future__ import annotations

import grpc


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
