"""A backend that answers a tool call with more than the front accepts (here chunked, with no
Content-Length) gets its call failed and audited, and the client is told why without being
told where the backend is. Regression: chunked and close-delimited answers were read with no
limit (a 300 MB answer took a front to 7.8 GB)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message, Receive, Scope, Send

from mcp_front.backends.http11 import _MAX_BODY_BYTES
from tests.conftest import World, mcp_client
from tests.support.servers import serve_asgi
from tests.support.upstream import Upstream

_MIB = b"x" * 1_048_576


class _Oversized:
    """The test upstream, except that every tools/call is answered with an endless-looking
    JSON string one MiB over the front's limit, streamed in chunks."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner.app(any_host=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST" and json.loads(body or b"{}").get("method") == "tools/call":
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"jsonrpc":"2.0","id":1,"result":"', "more_body": True})
            for _ in range(_MAX_BODY_BYTES // len(_MIB) + 1):
                await send({"type": "http.response.body", "body": _MIB, "more_body": True})
            await send({"type": "http.response.body", "body": b'"}'})
            return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.inner(scope, replay, send)


@pytest.fixture
async def oversized(world: World) -> AsyncIterator[str]:
    backend = Upstream()
    async with serve_asgi(_Oversized(backend)) as base:
        await world.operator.upsert_toolkit("acme", "big", name="big", backend_url=f"{base}/mcp")
        await world.operator.sync_tools("acme", "big", await backend.catalogue())
        yield base


async def test_an_oversized_answer_fails_the_call_audited_without_the_backend_address(
    world: World, front: str, oversized: str
) -> None:
    async with mcp_client(f"{front}/acme/big/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("echo", {"text": "hello"})
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and f"more than {_MAX_BODY_BYTES // 1_048_576} MiB" in text
    assert "127.0.0.1" not in text and oversized.split("//")[1] not in text
    audit = await world.operator.query_audit("acme", tool="echo")
    assert [(r.status, "MiB" in r.error) for r in audit.records] == [("backend_error", True)]
