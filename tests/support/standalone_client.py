"""A client's standalone stream (GET on an MCP endpoint), read in the background with httpx,
for tests of what a gateway relays outside any request (docs/adr/0025)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Stream:
    """A client's standalone stream (GET), read in the background into `messages`."""

    status: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, method: str, count: int = 1) -> list[dict[str, Any]]:
        """The messages so far, once `count` of `method` have arrived (the test's timeout bounds it)."""
        while sum(1 for m in self.messages if m.get("method") == method) < count:
            self.arrived.clear()
            await self.arrived.wait()
        return list(self.messages)


@contextlib.asynccontextmanager
async def standalone(url: str, key: str) -> AsyncIterator[Stream]:
    stream = Stream()
    opened = asyncio.Event()

    async def read() -> None:
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        async with httpx.AsyncClient(timeout=None) as http, http.stream("GET", url, headers=headers) as response:
            stream.status = response.status_code
            opened.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    stream.messages.append(json.loads(line[5:]))
                    stream.arrived.set()

    task = asyncio.get_running_loop().create_task(read())
    await opened.wait()
    try:
        yield stream
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
