"""Per-key rate and concurrency limits (key = a hash of the bearer, never the bearer).

A token bucket bounds the request rate of one key, a count bounds its requests in flight
(long polls included), so a flood from one key is refused cheaply with 429 + Retry-After
instead of crowding out other keys. In-process by default; `redis_limits` shares the same
limits across replicas.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

_MAX_TRACKED_KEYS = 100_000


async def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    retry_after: float = 0.0
    reason: str = ""
    release: Callable[[], Awaitable[None]] = _nothing


@dataclass(frozen=True, slots=True)
class LimitSettings:
    rate_per_second: float  # 0 = no rate limit
    burst: int
    max_concurrent: int  # 0 = no concurrency limit


class KeyLimiter(Protocol):
    async def admit(self, key: str) -> Admission: ...

    async def close(self) -> None: ...


def rate_refusal(settings: LimitSettings, missing_tokens: float) -> Admission:
    return Admission(False, missing_tokens / settings.rate_per_second, "rate limit exceeded")


CONCURRENCY_REFUSAL = Admission(False, 1.0, "too many requests in flight for this key")


class LocalLimiter:
    """One replica's view: a token bucket and an in-flight count per key."""

    def __init__(self, settings: LimitSettings) -> None:
        self._settings = settings
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._in_flight: dict[str, int] = {}

    async def admit(self, key: str) -> Admission:
        settings = self._settings
        in_flight = self._in_flight.get(key, 0)
        if settings.max_concurrent and in_flight >= settings.max_concurrent:
            return CONCURRENCY_REFUSAL
        if settings.rate_per_second > 0:
            now = time.monotonic()
            tokens, at = self._buckets.get(key, (float(settings.burst), now))
            tokens = min(float(settings.burst), tokens + (now - at) * settings.rate_per_second)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return rate_refusal(settings, 1.0 - tokens)
            if len(self._buckets) > _MAX_TRACKED_KEYS:
                self._buckets.clear()  # every bucket refills to full anyway; bounded memory wins
            self._buckets[key] = (tokens - 1.0, now)
        if not settings.max_concurrent:
            return Admission(True)
        self._in_flight[key] = in_flight + 1

        async def release() -> None:
            left = self._in_flight.get(key, 1) - 1
            if left > 0:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)

        return Admission(True, release=release)

    async def close(self) -> None:
        return None
