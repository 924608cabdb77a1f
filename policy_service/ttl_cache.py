"""A tiny bounded TTL cache with single-flight loading. Lookups it serves are at most
`ttl` seconds stale, which is how revocation and permission changes reach every replica
within the DESIGN's bound. Concurrent misses for one key share a single load, so an
expiry under load costs one query, not one per waiting request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._data: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    def get(self, key: K) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = (time.monotonic() + self._ttl, value)

    def clear(self) -> None:
        self._data.clear()

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        item = self._data.get(key)
        if item is not None and item[0] >= time.monotonic():
            return item[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._loading.pop(key, None)
        self.put(key, value)
        future.set_result(value)
        return value
