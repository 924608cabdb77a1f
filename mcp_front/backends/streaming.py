"""A tools/call whose backend may answer with an SSE stream: every message the backend
sends before its result (progress, logs, sampling and elicitation requests) is handed to
a `CallRelay` in order, and the relay's answers to the backend's requests go back to it.

A backend that answers with plain JSON costs what `UpstreamPool.call_tool` costs: one
POST, one parse. Cancelling the task that runs the call (client gone, or the client sent
`notifications/cancelled`) drops the backend connection and tells the backend
`notifications/cancelled` for the request, so its work stops too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from mcp_front.backends.answer_budget import hold_answer
from mcp_front.backends.http11 import HttpError, OpenResponse, ResponseTooLarge, event_within_limit
from mcp_front.backends.negotiation import envelope, refused_version

if TYPE_CHECKING:
    from mcp_front.backends.negotiation import Negotiated as _Session
    from mcp_front.backends.upstream import Target, UpstreamPool

log = logging.getLogger("monomcp.front")

CANCEL_NOTICE_SECONDS = 2.0


class CallRelay(Protocol):
    """The client side of one call: where the backend's messages go."""

    # A 2026-07-28 client's own era `_meta` (log level, capabilities) for a backend in that era.
    era_meta: dict[str, Any]

    async def notify(self, message: dict[str, Any]) -> None:
        """A backend notification about this call (progress, log message, ...)."""

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """A backend request (sampling, elicitation, roots, ping): the JSON-RPC reply members
        (`{"result": ...}` or `{"error": ...}`) to send back to the backend."""


class SessionGone(Exception):
    """The backend forgot our session (404) or our era (-32022): learn it again and retry once."""


class SseDecoder:
    """Incremental `text/event-stream` decoding into JSON-RPC messages (non-JSON data skipped).

    The stream as a whole is unbounded (a long call may stream any number of progress
    notes); each event, the result included, is bounded like a JSON answer
    (`event_within_limit`), so a result still fits the audit's CompleteToolCall message."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of the event still arriving."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        start = max(len(self._buffer) - 1, 0)  # a separator may straddle the previous chunk
        self._buffer += chunk.replace(b"\r\n", b"\n")
        messages: list[dict[str, Any]] = []
        while (end := self._buffer.find(b"\n\n", start)) >= 0:
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            start = 0
            event_within_limit(len(block))
            data = b"\n".join(line[5:].lstrip() for line in block.split(b"\n") if line.startswith(b"data:"))
            if not data:
                continue  # priming events and comments carry no message
            try:
                message = json.loads(data)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                continue
            if isinstance(message, dict):
                messages.append(message)
        event_within_limit(len(self._buffer))  # the event still arriving
        return messages


async def relayed_call(
    pool: UpstreamPool, target: Target, params: dict[str, Any], relay: CallRelay, modern: bool = False
) -> tuple[_Session, dict[str, Any] | None]:
    """The session used and the backend's final JSON-RPC message for tools/call (None if the
    session or era was refused twice). `modern`: the client speaks 2026-07-28."""
    for attempt in (0, 1):
        session = await pool.session_for(target, modern)
        try:
            return session, await _one_attempt(pool, target, session, params, relay)
        except SessionGone:
            pool.forget_session(target)
            if attempt:
                return session, None
    raise AssertionError("unreachable")


async def _one_attempt(
    pool: UpstreamPool, target: Target, session: _Session, params: dict[str, Any], relay: CallRelay
) -> dict[str, Any]:
    from mcp_front.backends.upstream import UpstreamError

    request_id = pool.next_id()
    wire_params = envelope(session, params, relay.era_meta)
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": wire_params}
    response = await pool.open(target, session, body)
    try:
        if response.status == 404 and session.session_id:
            raise SessionGone
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            try:
                parsed = json.loads(await response.read_all())
            except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
                parsed = None
            if not isinstance(parsed, dict):
                raise UpstreamError(f"backend answered HTTP {response.status} without a JSON-RPC message")
            message: dict[str, Any] = parsed
        else:
            message = await _follow_stream(pool, target, session, response.chunks(), request_id, relay)
        if refused_version(session, message):  # a backend redeployed without 2026-07-28
            raise SessionGone
        return message
    except asyncio.CancelledError:
        response.close()
        await _tell_cancelled(pool, target, session, request_id)
        raise
    except ResponseTooLarge as exc:  # its message names no backend: the client may read it
        raise UpstreamError(str(exc), str(exc)) from exc
    except HttpError as exc:
        raise UpstreamError(f"backend stream failed: {exc}", "the toolkit's backend stream failed") from exc
    finally:
        response.close()


async def _follow_stream(
    pool: UpstreamPool,
    target: Target,
    session: _Session,
    chunks: AsyncIterator[bytes],
    request_id: int,
    relay: CallRelay,
) -> dict[str, Any]:
    from mcp_front.backends.upstream import UpstreamError

    decoder = SseDecoder()
    async for chunk in chunks:
        # Held before the events this chunk completes are parsed; a stream holds its largest
        # event, not its total (progress notes come and go).
        await hold_answer(decoder.buffered + len(chunk))
        for message in decoder.feed(chunk):
            if "method" not in message:
                if message.get("id") == request_id:
                    return message
                continue  # an answer to something else: not ours to relay
            if "id" in message:
                reply = await relay.ask(message)
                await pool.post_message(target, session, {"jsonrpc": "2.0", "id": message["id"], **reply})
            else:
                await relay.notify(message)
    raise UpstreamError("backend closed its stream before answering")


async def _tell_cancelled(pool: UpstreamPool, target: Target, session: _Session, request_id: int) -> None:
    """Best effort, shielded from the cancellation that caused it, bounded in time."""
    note = {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": request_id, "reason": "The client cancelled the call."},
    }

    async def send() -> None:
        try:
            async with asyncio.timeout(CANCEL_NOTICE_SECONDS):
                await pool.post_message(target, session, note)
        except Exception as exc:  # best effort: the call is already over for the client
            log.info("backend not told of cancellation: %s", exc)

    await asyncio.shield(asyncio.ensure_future(send()))


__all__ = ["CallRelay", "OpenResponse", "SseDecoder", "relayed_call"]
