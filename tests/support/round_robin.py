"""A round-robin loopback load balancer (no affinity) in front of several fronts: each request
goes to the next one, responses stream back as they arrive. Records which upstream took each
JSON-RPC message, so a test can show an answer landed on another replica than its call."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from tests.support.servers import read_body

_HOP = {b"host", b"content-length", b"transfer-encoding", b"connection"}


@dataclass
class RoundRobin:
    upstreams: list[str]
    taken: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (upstream index, message)
    _next: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        index, self._next = self._next, (self._next + 1) % len(self.upstreams)
        try:
            self.taken.append((index, json.loads(body)))
        except ValueError:
            pass
        url = self.upstreams[index] + scope["path"]
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in _HOP]
        async with httpx.AsyncClient(timeout=None) as http:
            request = http.build_request(scope["method"], url, headers=headers, content=body)
            response = await http.send(request, stream=True)
            try:
                out = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.encode() not in _HOP]
                await send({"type": "http.response.start", "status": response.status_code, "headers": out})
                pump = asyncio.ensure_future(_pump(response, send))
                left = asyncio.ensure_future(_disconnected(receive))
                # A client that leaves closes the upstream stream too, as a real balancer does
                # (a standalone GET would otherwise stay open upstream until the server stops).
                await asyncio.wait({pump, left}, return_when=asyncio.FIRST_COMPLETED)
                for task in (pump, left):
                    task.cancel()
                await asyncio.gather(pump, left, return_exceptions=True)
            finally:
                await response.aclose()


async def _pump(response: httpx.Response, send: Send) -> None:
    async for chunk in response.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
