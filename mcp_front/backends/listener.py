"""Follows a backend's standalone SSE stream (the GET stream of an initialize-era session),
where a backend sends what belongs to no request: resource updates, list changes, log
messages (docs/adr/0025-standalone-streams-and-subscriptions.md).

One listener per upstream session (tenant scope, backend URL, backend credential). Every
notification goes to `sink(scope, message)`; a request the backend makes on this stream
(nobody's call is waiting on it) is answered here: `ping` with `{}`, anything else with
`-32601`. The stream is reopened with backoff while someone still listens; a backend that
has no standalone stream (405), or a session the backend forgot (404), ends the listener:
the next session the pool opens starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp_front.backends.http11 import HttpError
from mcp_front.backends.streaming import SseDecoder

if TYPE_CHECKING:
    from mcp_front.backends.negotiation import Negotiated
    from mcp_front.backends.upstream import Target, UpstreamPool

log = logging.getLogger("monomcp.front")

Sink = Callable[[str, dict[str, Any]], Awaitable[None]]
_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_NO_STREAM = frozenset({404, 405})


async def listen(pool: UpstreamPool, target: Target, session: Negotiated, sink: Sink) -> None:
    """Runs until cancelled, the session is replaced or forgotten, or the backend has no stream."""
    from mcp_front.backends.upstream import UpstreamError

    failures = 0
    while pool.current_session(target) == session:
        try:
            response = await pool.open_stream(target, session)
            try:
                if response.status in _NO_STREAM:
                    log.info("backend has no standalone stream for scope %s (HTTP %s)", target.scope, response.status)
                    return
                if response.status != 200 or not response.headers.get("content-type", "").startswith(
                    "text/event-stream"
                ):
                    raise UpstreamError(f"standalone stream refused: HTTP {response.status}")
                failures = 0
                await _follow(pool, target, session, response.chunks(), sink)
            finally:
                response.close()
        except (UpstreamError, HttpError) as exc:
            log.info("backend standalone stream for scope %s ended: %s", target.scope, exc)
            failures += 1
        await asyncio.sleep(_BACKOFF_SECONDS[min(failures, len(_BACKOFF_SECONDS) - 1)])


async def _follow(pool: UpstreamPool, target: Target, session: Negotiated, chunks: Any, sink: Sink) -> None:
    decoder = SseDecoder()
    async for chunk in chunks:
        for message in decoder.feed(chunk):
            method = message.get("method")
            if not isinstance(method, str):
                continue  # a response on the standalone stream answers nothing of ours
            if "id" in message:
                reply: dict[str, Any] = (
                    {"result": {}}
                    if method == "ping"
                    else {"error": {"code": -32601, "message": f"{method} is not available outside a call"}}
                )
                await pool.post_message(target, session, {"jsonrpc": "2.0", "id": message["id"], **reply})
                continue
            try:
                await sink(target.scope, message)
            except Exception:  # one client's failure never stops the tenant's stream
                log.exception("relaying a standalone notification failed")
