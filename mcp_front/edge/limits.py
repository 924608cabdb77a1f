"""Rate and concurrency limits per key (a hash of the bearer, never the bearer) and per
organization (every key and person of one org together).

A token bucket bounds the request rate of one holder, a count bounds its requests in flight
(long polls included), so a flood from one key, or from one tenant's many keys, is refused
cheaply with 429 + Retry-After instead of crowding out the others. In-process by default;
`redis_limits` shares the same limits across replicas.
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
    holder: str = "key"  # what one bucket belongs to, as refusals name it

    @property
    def off(self) -> bool:
        return self.rate_per_second <= 0 and self.max_concurrent <= 0


class KeyLimiter(Protocol):
    async def admit(self, key: str) -> Admission: ...

    async def close(self) -> None: ...


ADMITTED = Admission(True)


def rate_refusal(settings: LimitSettings, missing_tokens: float) -> Admission:
    reason = "rate limit exceeded" if settings.holder == "key" else f"rate limit of this {settings.holder} exceeded"
    return Admission(False, missing_tokens / settings.rate_per_second, reason)


def concurrency_refusal(settings: LimitSettings) -> Admission:
    return Admission(False, 1.0, f"too many requests in flight for this {settings.holder}")


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
            return concurrency_refusal(settings)
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
            return ADMITTED
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
