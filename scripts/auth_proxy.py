"""A loopback reverse proxy that adds `Authorization: Bearer <key>` to every request.

The MCP conformance suite sends no credentials; this lets it test an authenticated front.
Host and Origin pass through untouched so DNS-rebinding checks still see the client's values.
Responses stream through as they arrive (an SSE answer's progress and requests must reach
the client before the call's result, which may wait for the client's answer).
Usage: python scripts/auth_proxy.py LISTEN_PORT UPSTREAM_BASE_URL KEY
"""

from __future__ import annotations

import sys

import httpx
import uvicorn
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def build(upstream: str, key: str) -> object:
    client = httpx.AsyncClient(base_url=upstream, timeout=60)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["authorization"] = f"Bearer {key}"
        outbound = client.build_request(
            request.method,
            request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            headers=headers,
            content=await request.body(),
        )
        upstream_response = await client.send(outbound, stream=True)
        out_headers = {k: v for k, v in upstream_response.headers.items() if k.lower() not in HOP_BY_HOP}
        response = StreamingResponse(
            upstream_response.aiter_raw(),
            upstream_response.status_code,
            out_headers,
            background=BackgroundTask(upstream_response.aclose),
        )
        await response(scope, receive, send)

    return app


if __name__ == "__main__":
    port, upstream, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(build(upstream, key), host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
