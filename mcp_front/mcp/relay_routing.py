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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mcp_front.mcp.relay import RelayHub

log = logging.getLogger("monomcp.front")

CHANNEL = "monomcp:relay:v1"
_RETRY_SECONDS = 1.0


class SharedRelays:
    def __init__(self, hub: RelayHub, redis_url: str, channel: str = CHANNEL) -> None:
        self._hub, self._channel = hub, channel
        self._redis: Redis = Redis.from_url(redis_url, socket_connect_timeout=0.5)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Listens for the process's lifetime; the hub forwards what it cannot match meanwhile."""
        listening = asyncio.get_running_loop().create_task(self._listen())
        self._hub.forward = self.publish
        try:
            yield
        finally:
            self._hub.forward = None
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
            await self._redis.aclose()

    async def publish(self, kind: str, digest: str, message: dict[str, Any]) -> None:
        payload = json.dumps({"kind": kind, "owner": digest, "message": message}, separators=(",", ":"))
        try:
            await self._redis.publish(self._channel, payload)
        except RedisError as exc:
            log.warning("relayed %s not routed to other replicas: %s", kind, exc)

    def receive(self, payload: bytes | str) -> bool:
        """One published message: delivered if this process holds its call."""
        try:
            routed = json.loads(payload)
            kind, digest, message = routed["kind"], routed["owner"], routed["message"]
        except (ValueError, KeyError, TypeError):
            return False
        if not isinstance(digest, str) or not isinstance(message, dict):
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
