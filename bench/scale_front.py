"""The gateway half of `make bench-scale`: a real front over HTTP in front of the policy
service, measured at each catalogue and audit-log size (bench/scale.py).

Two toolkits of one org: `noop`, the one that grows, and `ref`, which keeps 10 tools. Load
windows alternate between a call to the big toolkit's last tool (beyond the first tools/list
page once the catalogue needs pages) and a call to the reference toolkit's, so both see the
same neighbours: the big/ref ratio is the flatness figure that survives a busy box.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from bench import loadgen
from bench.procs import cpu_seconds
from bench.run import postgres_pids

T = TypeVar("T")
PATH = "/bench/{toolkit}/mcp"
ERA = "2025-11-25"


@dataclass
class Window:
    """One toolkit's gateway calls over the alternating windows, with CPU per call."""

    result: loadgen.Result
    front_ms: float
    policy_ms: float
    postgres_ms: float

    def cells(self) -> str:
        r = self.result
        return (
            f"{r.rps:,.0f} | {r.percentile(50):.2f} | {r.percentile(99):.2f} | "
            f"{self.front_ms:.2f} / {self.policy_ms:.2f} / {self.postgres_ms:.2f}"
        )


async def calls(
    port: int,
    token: str,
    targets: dict[str, tuple[str, str]],
    pids: dict[str, int],
    database_url: str,
    seconds: float,
    rounds: int,
) -> dict[str, Window]:
    """c=1 `tools/call` windows of `seconds`, alternating over `targets` (label → (toolkit, tool))
    for `rounds` rounds; CPU per call of the front, the policy service and Postgres from /proc,
    net of what each spends unloaded (measured in a half window after each round): at c=1 the
    idle ticking (heartbeats, pollers) would otherwise count more per call in a slower window."""
    results = {label: loadgen.Result() for label in targets}
    cpu = {label: {"front": 0.0, "policy": 0.0, "postgres": 0.0} for label in targets}
    for toolkit, tool in targets.values():  # warm both paths (caches, connections)
        await loadgen.run("127.0.0.1", port, PATH.format(toolkit=toolkit), token, 1, 0.3, ERA, tool)
    idle = {"front": 0.0, "policy": 0.0, "postgres": 0.0}
    for _ in range(rounds):
        for label, (toolkit, tool) in targets.items():
            path = PATH.format(toolkit=toolkit)
            run = loadgen.run("127.0.0.1", port, path, token, 1, seconds, ERA, tool)
            spent, result = await _watched(pids, database_url, run)
            results[label].add(result)
            for name, value in spent.items():
                cpu[label][name] += value
        spent, _ = await _watched(pids, database_url, asyncio.sleep(seconds / 2))
        for name, value in spent.items():
            idle[name] += value
    idle_rate = {k: v / (rounds * seconds / 2) for k, v in idle.items()}  # CPU seconds per second, unloaded
    out = {}
    for label, result in results.items():
        per = {
            k: max(v - idle_rate[k] * result.seconds, 0.0) * 1000 / max(result.requests, 1)
            for k, v in cpu[label].items()
        }
        out[label] = Window(result, per["front"], per["policy"], per["postgres"])
    return out


async def _watched(pids: dict[str, int], database_url: str, work: Awaitable[T]) -> tuple[dict[str, float], T]:
    """CPU seconds the front, the policy service and the Postgres backends spent during `work`."""
    watched = {"front": [pids["front"]], "policy": [pids["policy"]], "postgres": await postgres_pids(database_url)}
    before = {p: cpu_seconds(p) for v in watched.values() for p in v}
    result = await work
    spent = {name: sum(max(cpu_seconds(p) - before[p], 0.0) for p in procs) for name, procs in watched.items()}
    return spent, result


class Connection:
    """One keep-alive HTTP/1.1 connection to the front for sequential JSON-RPC requests."""

    def __init__(self, port: int, token: str, toolkit: str) -> None:
        self._port, self._token, self._path = port, token, PATH.format(toolkit=toolkit)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def rpc(self, method: str, params: dict[str, object]) -> dict[str, Any]:
        """The JSON-RPC result; raises RuntimeError on an HTTP or JSON-RPC error."""
        assert self._reader is not None and self._writer is not None
        self._writer.write(loadgen.rpc_request("127.0.0.1", self._port, self._path, self._token, method, params, ERA))
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(ln.split(b":", 1)[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")),
            None,
        )
        if length is None:
            raise RuntimeError(f"{method}: no Content-Length: {head[:200]!r}")
        body = await self._reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{method}: {head.split(b' ', 2)[1].decode()} {body[:300]!r}")
        message = json.loads(body)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return dict(message["result"])


@dataclass
class Listing:
    first_page_p50_ms: float
    first_page_max_ms: float
    page_size: int
    has_next: bool
    walk_ms: float | None = None  # every page, cursor after cursor (when walked)
    walk_pages: int = 0
    walk_tools: int = 0


async def listing(port: int, token: str, toolkit: str, samples: int, walk: bool) -> Listing:
    """`tools/list` first page timings over `samples` sequential requests (spread over more
    than the front's 1 s access cache, so some are misses), and optionally a walk of every page."""
    times: list[float] = []
    async with Connection(port, token, toolkit) as conn:
        for _ in range(samples):
            started = time.perf_counter()
            first = await conn.rpc("tools/list", {})
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.1)
        out = Listing(statistics.median(times), max(times), len(first["tools"]), "nextCursor" in first)
        if walk:
            started = time.perf_counter()
            page = await conn.rpc("tools/list", {})
            pages, tools = 1, len(page["tools"])
            while "nextCursor" in page:
                page = await conn.rpc("tools/list", {"cursor": page["nextCursor"]})
                pages, tools = pages + 1, tools + len(page["tools"])
            out.walk_ms, out.walk_pages, out.walk_tools = (time.perf_counter() - started) * 1000, pages, tools
    return out
