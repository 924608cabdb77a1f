"""Reading a request body within a size and a time budget.

The size is enforced while the body streams in (a declared Content-Length over the limit is
refused before any byte is read), so an oversized body never sits in memory; the deadline
covers the whole body, so a client dribbling bytes cannot hold a connection open.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(scope: Scope, receive: Receive, max_bytes: int, deadline_seconds: float) -> bytes:
    """Raises BodyTooLarge, BodyTimeout or starlette's ClientDisconnect."""
    declared = declared_length(scope)
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline_seconds):  # one timer handle: cheaper than an anyio cancel scope
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        raise BodyTimeout from None


def replay(body: bytes, original: Receive) -> Receive:
    """Hands the already-read body to the SDK, then passes through (e.g. disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
