"""Bounded waits for an approval: a deadline, exponential backoff, a stop when the client
leaves, and a cap on how many waits one credential may hold at once.

A long poll costs a policy round trip per step and a held connection, so none of them may
spin, outlive its client, or pile up without bound behind one key."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
Disconnected = Callable[[], Awaitable[bool]]

FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 5.0


async def never_disconnected() -> bool:
    return False


class ClientGone(Exception):
    """The client closed the connection: stop the work done on its behalf."""


class TooManyWaiters(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Too many requests are already waiting for approvals with this credential (limit {limit}). "
            "Poll with tasks/get or approval_status instead, or try again once one finishes."
        )


async def poll_until(
    check: Callable[[], Awaitable[T | None]],
    *,
    deadline_seconds: float,
    disconnected: Disconnected = never_disconnected,
    first_delay: float = FIRST_DELAY_SECONDS,
    max_delay: float = MAX_DELAY_SECONDS,
) -> T | None:
    """`check()` until it returns a value; None once the deadline passes; ClientGone if the client left.

    Sleeps between checks grow exponentially (capped), and never past the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(deadline_seconds, 0.0)
    delay = first_delay
    while True:
        found = await check()
        if found is not None:
            return found
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)
        if await disconnected():
            raise ClientGone()


class WaiterLimit:
    """Counts the waits each credential holds in this process (keyed by the credential's hash)."""

    def __init__(self, per_credential: int) -> None:
        self._limit = max(per_credential, 1)
        self._held: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, credential: str) -> Iterator[None]:
        key = hashlib.sha256(credential.encode()).hexdigest()
        if self._held[key] >= self._limit:
            raise TooManyWaiters(self._limit)
        self._held[key] += 1
        try:
            yield
        finally:
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]
