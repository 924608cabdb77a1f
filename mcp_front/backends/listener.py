"""Follows a backend's stream of what belongs to no request: resource updates, list changes,
log messages. On an initialize-era session it is the backend's standalone GET stream
(docs/adr/0025-standalone-streams-and-subscriptions.md); on a 2026-07-28 session, which has
no GET stream, it is the front's own `subscriptions/listen` request for the tenant
(docs/adr/0048-listening-to-2026-backends.md).

One listener per upstream session (tenant scope, backend URL, backend credential). Every
notification goes to `sink(scope, message)` without the backend's subscription id (that id
names the front's listen, not the client's). A request the backend makes on a GET stream
(nobody's call is waiting on it) is answered here: `ping` with `{}`, anything else with
`-32601`; 2026-07-28 has no such requests. The stream is reopened with backoff while
someone still listens, and without backoff (after one short pause that gathers a burst)
with the new URIs when `Wanted.changed` is set. A backend that has no such stream (404/405,
or -32601 for listen) or a session the backend forgot ends the listener: the next session
the pool opens starts a new one. What a backend sends is bounded per event (`SseDecoder`),
a level trigger repeated within one read is relayed once, and a head that never comes is a
failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_front.backends.http11 import HttpError, OpenResponse
from mcp_front.backends.negotiation import SUBSCRIPTION_ID_META_KEY
from mcp_front.backends.streaming import SseDecoder

if TYPE_CHECKING:
    from mcp_front.backends.negotiation import Negotiated
    from mcp_front.backends.upstream import Target, UpstreamPool

log = logging.getLogger("monomcp.front")

Sink = Callable[[str, dict[str, Any]], Awaitable[None]]
_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_OPEN_SECONDS = 30.0
_SETTLE_SECONDS = 0.05
_NO_STREAM = frozenset({404, 405})
_METHOD_NOT_FOUND = -32601
# Level triggers ("this changed, fetch it again"): the same one twice in one read says nothing
# more, so a backend's flood costs one delivery per read, not one per copy (ADR 0048).
_LEVEL_TRIGGERS = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    }
)


@dataclass
class Wanted:
    """The resource URIs the tenant wants from a 2026-07-28 backend (read at each opening);
    `changed` is set when they change, so the listener reopens with the new filter."""

    uris: Callable[[], list[str]] = list
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def listen(pool: UpstreamPool, target: Target, session: Negotiated, sink: Sink, wanted: Wanted) -> None:
    """Runs until cancelled, the session is replaced or forgotten, or the backend has no stream."""
    from mcp_front.backends.upstream import UpstreamError

    failures = 0
    while pool.follows(target, session):
        wanted.changed.clear()
        refiltered = False
        try:
            async with asyncio.timeout(_OPEN_SECONDS):
                response = await pool.open_stream(target, session, wanted.uris())
            try:
                if await _no_stream(response):
                    log.info("backend has no stream for scope %s (HTTP %s)", target.scope, response.status)
                    return
                if response.status != 200 or not _is_sse(response):
                    raise UpstreamError(f"backend stream refused: HTTP {response.status}")
                failures = 0
                follow = _follow(pool, target, session, response, sink)
                refiltered = await _until_changed(follow, wanted.changed)
            finally:
                response.close()
        except (UpstreamError, HttpError, TimeoutError) as exc:
            log.info("backend stream for scope %s ended: %s", target.scope, exc or type(exc).__name__)
            failures += 1
        # Reopened with the tenant's new URIs after a breath that lets a burst of changes (a
        # listen naming many URIs subscribes them one by one) become one reopening.
        pause = _SETTLE_SECONDS if refiltered else _BACKOFF_SECONDS[min(failures, len(_BACKOFF_SECONDS) - 1)]
        await asyncio.sleep(pause)


def _is_sse(response: OpenResponse) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


async def _no_stream(response: OpenResponse) -> bool:
    """404/405, or a JSON answer of -32601 (a 2026-07-28 backend that serves no listen)."""
    if response.status in _NO_STREAM:
        return True
    if _is_sse(response):
        return False
    try:
        message = json.loads(await response.read_all())
    except (ValueError, RecursionError):
        return False
    error = message.get("error") if isinstance(message, dict) else None
    return isinstance(error, dict) and error.get("code") == _METHOD_NOT_FOUND


async def _until_changed(follow: Awaitable[None], changed: asyncio.Event) -> bool:
    """Follows until the stream ends (False) or the wanted URIs change first (True)."""
    following = asyncio.ensure_future(follow)
    change = asyncio.ensure_future(changed.wait())
    try:
        await asyncio.wait({following, change}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (following, change):
            task.cancel()
        await asyncio.gather(following, change, return_exceptions=True)
    if following.done() and not following.cancelled():
        following.result()  # the stream's own failure, if any
        return False
    return True


async def _follow(pool: UpstreamPool, target: Target, session: Negotiated, response: OpenResponse, sink: Sink) -> None:
    decoder = SseDecoder()
    async for chunk in response.chunks():
        for message in _once_each(decoder.feed(chunk)):
            method = message.get("method")
            if not isinstance(method, str):
                continue  # a response (a listen's graceful end) answers nothing of ours
            if "id" in message:
                if not session.modern:  # 2026-07-28 has no back-channel: nothing to answer on
                    await pool.post_message(target, session, {"jsonrpc": "2.0", "id": message["id"], **_reply(method)})
                continue
            try:
                await sink(target.scope, _without_hop_id(message))
            except Exception:  # one client's failure never stops the tenant's stream
                log.exception("relaying a standalone notification failed")


def _once_each(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages of one read, each level trigger (method, URI) kept once."""
    seen: set[tuple[str, Any]] = set()
    kept = []
    for message in messages:
        method = message.get("method")
        if isinstance(method, str) and method in _LEVEL_TRIGGERS:  # a list or object is unhashable
            params = message.get("params")
            uri = params.get("uri") if isinstance(params, dict) else None
            key = (method, uri if isinstance(uri, str) else None)
            if key in seen:
                continue
            seen.add(key)
        kept.append(message)
    return kept


def _reply(method: str) -> dict[str, Any]:
    if method == "ping":
        return {"result": {}}
    return {"error": {"code": -32601, "message": f"{method} is not available outside a call"}}


def _without_hop_id(message: dict[str, Any]) -> dict[str, Any]:
    params = message.get("params")
    if not isinstance(params, dict):
        return message
    meta = params.get("_meta")
    if not isinstance(meta, dict) or SUBSCRIPTION_ID_META_KEY not in meta:
        return message
    rest = {k: v for k, v in meta.items() if k != SUBSCRIPTION_ID_META_KEY}
    body = {k: v for k, v in params.items() if k != "_meta"} | ({"_meta": rest} if rest else {})
    return {**message, "params": body}
