"""Reading a request body within a size and a time budget.

The size is enforced while the body streams in (a declared Content-Length over the limit is
refused before any byte is read), so an oversized body never sits in memory; the deadline
covers the whole body, so a client dribbling bytes cannot hold a connection open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from typing import Any, cast

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
    """Raises BodyTooLarge, BodyTimeout or starlette's ClientDisconnect.

    The deadline's timer is armed only when the body is not already there: nearly every
    request's body arrives with its head, and `receive()` then answers without waiting, so
    the first `receive()` is stepped by hand and a timer armed only if it would wait
    (a timer armed and cancelled cost ~2.5% of the front's instructions per call; docs/adr/0040)."""
    declared = declared_length(scope)
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge
    body = _Body(max_bytes)
    first = _Stepped(receive())
    if first.done and body.take(first.result):
        return body.whole()
    try:
        async with asyncio.timeout(deadline_seconds):
            if not first.done and body.take(await first):
                return body.whole()
            while not body.take(await receive()):
                pass
            return body.whole()
    except TimeoutError:
        raise BodyTimeout from None


class _Body:
    """The chunks read so far, bounded by the size limit."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0

    def take(self, message: Message) -> bool:
        """Adds one `receive()` message; True once the body is complete."""
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > self._max_bytes:
            raise BodyTooLarge
        self._chunks.append(chunk)
        return not message.get("more_body", False)

    def whole(self) -> bytes:
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Stepped:
    """An awaitable advanced by hand to its first suspension: `done` and `result` when it
    finished without waiting, else awaiting this object awaits the rest of it (what
    `yield from` does: what the task sends or throws in is passed on, and its close too)."""

    def __init__(self, awaitable: Awaitable[Message]) -> None:
        self._steps = awaitable.__await__()
        self.result: Message = {}
        try:
            self._pending = self._steps.send(None)
        except StopIteration as finished:
            self.done, self.result = True, finished.value
        else:
            self.done = False

    def __await__(self) -> Generator[Any, Any, Message]:
        steps, pending = self._steps, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as thrown:  # the task's cancellation, mostly
                try:
                    pending = steps.throw(thrown)
                except StopIteration as finished:
                    return cast(Message, finished.value)
            else:
                try:
                    pending = steps.send(sent)
                except StopIteration as finished:
                    return cast(Message, finished.value)


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
