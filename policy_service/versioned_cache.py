"""A cache whose entries stay valid while the policy version stands (see
storage/policy_version.py): the decision snapshot is loaded once per key and per version, not
once per TTL. While the version source is not confirmed live, entries live `ttl` seconds, as
the TTL cache did. Concurrent misses for one key share a single load. Without a version
source it is the plain TTL cache (ADR 0024: one cache shape everywhere)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class VersionSource(Protocol):
    @property
    def current(self) -> int | None: ...


class VersionedCache(Generic[K, V]):
    """`ttl <= 0` turns caching off (every lookup loads)."""

    def __init__(self, ttl: float, version: VersionSource | None = None, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._version = version
        self._max = max_entries
        # key -> (policy version at load start or None, expiry for the TTL fallback, value)
        self._data: dict[K, tuple[int | None, float, V]] = {}
        self._loading: dict[tuple[K, int | None], asyncio.Future[V]] = {}

    def _current(self) -> int | None:
        return self._version.current if self._version is not None else None

    def _fresh(self, item: tuple[int | None, float, V], version: int | None) -> bool:
        if version is not None and item[0] == version:
            return True
        return item[1] >= time.monotonic() and (version is None or item[0] is None)

    def get(self, key: K) -> V | None:
        item = self._data.get(key)
        if item is None or not self._fresh(item, self._current()):
            return None
        return item[2]

    def put(self, key: K, value: V, version: int | None = None) -> None:
        if self._ttl <= 0:
            return
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = (version, time.monotonic() + self._ttl, value)

    def clear(self) -> None:
        self._data.clear()

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        version = self._current()
        item = self._data.get(key)
        if item is not None and self._fresh(item, version):
            return item[2]
        # A load begun under an older version may have read what a later write changed: join
        # only loads of this version.
        flight = (key, version)
        pending = self._loading.get(flight)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[flight] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._loading.pop(flight, None)
        # Stored under the version seen before loading: a write during the load moves the
        # version past it, so the next lookup loads again.
        self.put(key, value, version)
        future.set_result(value)
        return value
