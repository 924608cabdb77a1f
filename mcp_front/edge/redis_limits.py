"""The per-key and per-organization limits shared by every front replica through Redis.

One Lua script decides a request atomically in one round trip: the key's token bucket (on
Redis's clock, so replicas agree) and its in-flight set, where each admitted request holds
a member with a lease (a replica that dies frees its slots when the leases run out). If Redis
is unreachable the replica falls back to its own in-process limits rather than refusing all
traffic, and says so in the log; it asks Redis again only after `_PAUSE_SECONDS`, so a Redis
that hangs costs one socket timeout per pause, not one per request and limiter.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mcp_front.edge.limits import ADMITTED, Admission, LimitSettings, LocalLimiter, concurrency_refusal, rate_refusal

log = logging.getLogger("monomcp.front")

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_concurrent = tonumber(ARGV[3])
if max_concurrent > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= max_concurrent then return {0, 'concurrency'} end
end
local rate = tonumber(ARGV[1])
if rate > 0 then
  local burst = tonumber(ARGV[2])
  local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < 1 then
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
    return {0, tostring(1 - tokens)}
  end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
end
if max_concurrent > 0 then
  local lease = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
  redis.call('EXPIRE', KEYS[2], math.ceil(lease) + 1)
end
return {1, '0'}
"""
_WARN_EVERY_SECONDS = 10.0
_PAUSE_SECONDS = 5.0


class RedisLimiter:
    def __init__(self, url: str, settings: LimitSettings, lease_seconds: float, prefix: str = "monomcp:limit:") -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script: Any = self._redis.register_script(_ADMIT)
        self._settings = settings
        self._lease = lease_seconds
        self._prefix = prefix
        self._fallback = LocalLimiter(settings)
        self._warned_at = -_WARN_EVERY_SECONDS
        self._paused_until = 0.0  # after a failure, this replica's own limits until then

    async def admit(self, key: str) -> Admission:
        if time.monotonic() < self._paused_until:
            return await self._fallback.admit(key)
        rate_key, flight_key = f"{self._prefix}{key}:rate", f"{self._prefix}{key}:flight"
        member = uuid.uuid4().hex
        settings = self._settings
        args = (settings.rate_per_second, settings.burst, settings.max_concurrent, member, self._lease)
        try:
            allowed, detail = await self._script(keys=[rate_key, flight_key], args=args)
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return await self._fallback.admit(key)
        if not allowed:
            detail = detail.decode() if isinstance(detail, bytes) else str(detail)
            return concurrency_refusal(settings) if detail == "concurrency" else rate_refusal(settings, float(detail))
        if not settings.max_concurrent:
            return ADMITTED

        async def release() -> None:
            try:
                await self._redis.zrem(flight_key, member)
            except (RedisError, OSError) as exc:  # the lease frees the slot later
                self._warn(exc)

        return Admission(True, release=release)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._paused_until = now + _PAUSE_SECONDS
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("shared limits unavailable, using this replica's own limits: %s", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()
