"""A minimal keep-alive HTTP/1.1 load generator (far cheaper per request than httpx, so
the box's two cores go to the system under test, not to the client)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

MODERN = "2026-07-28"
_ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def add(self, other: Result) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies_ms.extend(other.latencies_ms)


def call_request(
    host: str, port: int, path: str, token: str | None, era: str = "2025-11-25", tool: str = "noop"
) -> bytes:
    """A raw `tools/call` of a no-argument tool (the no-op one by default) in the given protocol era."""
    return rpc_request(host, port, path, token, "tools/call", {"name": tool, "arguments": {}}, era)


def rpc_request(
    host: str, port: int, path: str, token: str | None, method: str, params: dict[str, object], era: str = "2025-11-25"
) -> bytes:
    """One raw JSON-RPC request over HTTP/1.1 in the given protocol era."""
    params = dict(params)
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: application/json, text/event-stream",
        f"MCP-Protocol-Version: {era}",
    ]
    if era == MODERN:
        params["_meta"] = _ENVELOPE
        headers.append(f"Mcp-Method: {method}")
        if method == "tools/call":
            headers.append(f"Mcp-Name: {params['name']}")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    headers.append(f"Content-Length: {len(body)}")
    if token:
        headers.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def _worker(host: str, port: int, request: bytes, stop_at: float, out: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            out.latencies_ms.append((time.perf_counter() - started) * 1000)
            if not head.startswith(b"HTTP/1.1 200") or b'"isError":true' in body or b'"error"' in body:
                out.errors += 1
            out.requests += 1
    finally:
        writer.close()


async def run(
    host: str,
    port: int,
    path: str,
    token: str | None,
    concurrency: int,
    seconds: float,
    era: str = "2025-11-25",
    tool: str = "noop",
) -> Result:
    request = call_request(host, port, path, token, era, tool)
    out = Result()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_worker(host, port, request, stop_at, out) for _ in range(concurrency)))
    out.seconds = time.perf_counter() - started
    return out
