"""One client's stream of what belongs to no request, as the hub fills it and the client reads
it: a GET on the endpoint (initialize era) or a `subscriptions/listen` (2026-07-28). Its era
says which of a dual-era backend's streams it hears (docs/adr/0053); its queue is bounded, so
a client that does not read loses its own stream, never the tenant's (docs/adr/0025)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from enum import StrEnum
from typing import Any

from starlette.types import Receive, Send

from mcp_front.mcp.relay import SSE_HEADERS, owner_digest, sse_event

_QUEUE = 256
# Bytes of messages one stream may have waiting: room for two of the largest events a backend
# may send (15 MiB, ADR 30), far below 256 of them (3.75 GB) a client that stops reading could
# otherwise make the front hold for its tenant's backend (red team, review 2).
_QUEUE_BYTES = 32 * 1_048_576
_KEEPALIVE_SECONDS = 25.0


class Era(StrEnum):
    """A client stream's protocol era: which of a dual-era backend's streams it hears."""

    INITIALIZE = "initialize"  # a GET on the endpoint
    MODERN = "2026-07-28"  # a `subscriptions/listen`


class ClientStream:
    """One client's open GET (or listen): a bounded queue of messages to write."""

    def __init__(
        self,
        owner: str,
        toolkit: str,
        scope: str,
        kinds: frozenset[str] | None = None,
        era: Era = Era.INITIALIZE,
        org: str = "",
    ) -> None:
        self.owner, self.toolkit, self.scope, self.era = owner, toolkit, scope, era
        self.org = org  # the caller's own org (its streams count against the org's bound)
        self.digest = owner_digest(owner)  # what subscriber sets hold, computed once per stream
        self.kinds = kinds  # a 2026-07-28 listen stream takes only what it asked for (None: the GET's all)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_QUEUE)
        self.overflowed = asyncio.Event()
        self._sizes: deque[int] = deque()  # of the queued messages, in order
        self._queued_bytes = 0

    def put(self, message: dict[str, Any], size: int = 0) -> None:
        """Queues `message` (`size`: its encoded bytes, about) unless the stream is too far behind."""
        if self._queued_bytes + size > _QUEUE_BYTES:
            self.overflowed.set()  # a client that does not read loses its stream, not the tenant's
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed.set()
            return
        self._sizes.append(size)
        self._queued_bytes += size

    async def get(self) -> dict[str, Any]:
        message = await self.queue.get()
        if self._sizes:
            self._queued_bytes -= self._sizes.popleft()
        return message


async def write_sse(stream: ClientStream, receive: Receive, send: Send) -> None:
    """Writes `stream` as SSE until the client leaves (or stops reading)."""
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": b": stream open\n\n", "more_body": True})
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(_write(stream, send))
            await _disconnected(receive, stream)
            writer.cancel()
    except OSError:
        pass  # the client went away mid-write


async def _disconnected(receive: Receive, stream: ClientStream) -> None:
    """Returns when the client disconnects or its queue overflowed."""
    overflow = asyncio.ensure_future(stream.overflowed.wait())
    try:
        while True:
            message = asyncio.ensure_future(receive())
            done, _ = await asyncio.wait({message, overflow}, return_when=asyncio.FIRST_COMPLETED)
            if overflow in done:
                message.cancel()
                return
            if message.result()["type"] == "http.disconnect":
                return
    finally:
        overflow.cancel()


async def _write(stream: ClientStream, send: Send) -> None:
    while True:
        try:
            async with asyncio.timeout(_KEEPALIVE_SECONDS):
                message = await stream.get()
        except TimeoutError:
            await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
            continue
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": sse_event(message), "more_body": True})
