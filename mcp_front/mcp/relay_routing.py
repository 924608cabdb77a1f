"""Initialize-era answers and cancellations that reach the wrong replica are routed to the
one holding the call, over Redis pub/sub (docs/adr/0025-standalone-streams-and-subscriptions.md).

A relayed sampling or elicitation request waits on the open SSE response of one replica;
the client POSTs its answer wherever the load balancer sends it. A replica that cannot
match an answer (`monomcp-…` id) or a `notifications/cancelled` publishes it, with the
SHA-256 of the credential that sent it, on one channel every replica listens to; the
replica that holds the call delivers it after the same constant-time owner check as a
local answer, and the others drop it. The credential itself never leaves the process.
Delivery is at most once and best effort: if Redis is down the answer is lost as it was
without routing (the call ends at the toolkit's timeout, audited).

The same channel carries what a replica's backend listener hears on a standalone stream
(`standalone.StreamHub.share`): every other replica hands it to its own client streams of
that tenant scope, a resource update only to the streams of the credentials (by digest)
that subscribed through the replica that heard it, and what one era's stream of a dual-era
backend carried only to that era's streams (`era`, docs/adr/0053; a message without it, as
older replicas publish, is for every stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mcp_front.mcp.client_stream import Era
from mcp_front.mcp.relay import RelayHub
from mcp_front.mcp.standalone import StreamHub

log = logging.getLogger("monomcp.front")

CHANNEL = "monomcp:relay:v1"
_ERAS = frozenset(era.value for era in Era)
_RETRY_SECONDS = 1.0


class SharedRelays:
    def __init__(self, hub: RelayHub, redis_url: str, streams: StreamHub | None = None, channel: str = CHANNEL) -> None:
        self._hub, self._streams, self._channel = hub, streams, channel
        self._redis: Redis = Redis.from_url(redis_url, socket_connect_timeout=0.5)
        self._replica = uuid.uuid4().hex  # a replica skips what it published itself

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Listens for the process's lifetime; the hub forwards what it cannot match meanwhile."""
        listening = asyncio.get_running_loop().create_task(self._listen())
        self._hub.forward = self.publish
        if self._streams is not None:
            self._streams.share = self
        try:
            yield
        finally:
            self._hub.forward = None
            if self._streams is not None:
                self._streams.share = None
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
            await self._redis.aclose()

    async def publish(self, kind: str, digest: str, message: dict[str, Any]) -> None:
        await self._send({"kind": kind, "owner": digest, "message": message})

    async def notify(self, scope: str, message: dict[str, Any], subscribers: list[str], era: Era | None) -> None:
        """`era`: which client streams the event is for (a dual-era backend's, ADR 0053); null for all."""
        routed = {"kind": "notify", "scope": scope, "subscribers": subscribers, "era": era, "message": message}
        await self._send(routed)

    async def unsubscribed(self, scope: str, digest: str, uri: str) -> None:
        await self._send({"kind": "unsubscribe", "scope": scope, "owner": digest, "message": {"uri": uri}})

    async def _send(self, routed: dict[str, Any]) -> None:
        kind = routed["kind"]
        payload = json.dumps({**routed, "from": self._replica}, separators=(",", ":"))
        try:
            await self._redis.publish(self._channel, payload)
        except RedisError as exc:
            log.warning("relayed %s not routed to other replicas: %s", kind, exc)

    def receive(self, payload: bytes | str) -> bool:
        """One published message: delivered if this process holds its call."""
        try:
            routed = json.loads(payload)
            kind, message = routed["kind"], routed["message"]
        except (ValueError, KeyError, TypeError):
            return False
        if not isinstance(routed, dict) or not isinstance(message, dict) or routed.get("from") == self._replica:
            return False
        if kind == "unsubscribe":
            scope, digest, uri = routed.get("scope"), routed.get("owner"), message.get("uri")
            if self._streams is None or not all(isinstance(v, str) for v in (scope, digest, uri)):
                return False
            self._streams.unsubscribed_elsewhere(str(scope), str(digest), str(uri))
            return True
        if kind == "notify":
            scope, subscribers, era = routed.get("scope"), routed.get("subscribers"), routed.get("era")
            if self._streams is None or not isinstance(scope, str) or not isinstance(subscribers, list):
                return False
            if era is not None and (not isinstance(era, str) or era not in _ERAS):
                return False  # for streams of an era this replica does not know
            digests = [d for d in subscribers if isinstance(d, str)]
            self._streams.deliver_shared(scope, message, digests, Era(era) if era is not None else None)
            return True
        digest = routed.get("owner")
        if not isinstance(digest, str):
            return False
        if kind == "answer":
            return self._hub.deliver_digest(digest, message)
        if kind == "cancel":
            params = message.get("params")
            return self._hub.cancel_digest(digest, params.get("requestId") if isinstance(params, dict) else None)
        return False

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for item in pubsub.listen():
                        if item.get("type") == "message":
                            self.receive(item["data"])
            except (RedisError, OSError) as exc:
                log.warning("relay routing channel lost, retrying: %s", exc)
            await asyncio.sleep(_RETRY_SECONDS)
