"""A backend that answers a tool call with more than the front accepts (here chunked, with no
Content-Length) gets its call failed and audited, and the client is told why without being
told where the backend is. Regression: chunked and close-delimited answers were read with no
limit (a 300 MB answer took a front to 7.8 GB). An SSE answer is bounded per event, not in
total: a long call may stream any amount of progress (regression: the total was capped, so a
tool streaming more than 15 MiB of progress failed), but one event over the cap (the result
included) fails the call (docs/adr/0030-session-ids-and-long-streams.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from mcp_front.backends.http11 import _MAX_BODY_BYTES
from mcp_front.edge.body import replay
from tests.conftest import World, mcp_client
from tests.support.servers import read_body, serve_asgi
from tests.support.upstream import Upstream

_MIB = b"x" * 1_048_576


_NOTE = 256 * 1024  # under the Python SDK client's own 1 MiB per-event cap
_NOTES = _MAX_BODY_BYTES // _NOTE + 4  # a MiB more than the cap, in total


def _event(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + json.dumps(message).encode() + b"\n\n"


class _Oversized:
    """The test upstream, except that every tools/call is answered with more than the front's
    limit: `json`, one JSON string one MiB over it, streamed in chunks; `sse-result`, an SSE
    stream whose result event is that large; `sse-progress`, an SSE stream of progress notes
    that are each small but together over the limit, then a small result."""

    def __init__(self, inner: Upstream, mode: str = "json") -> None:
        self.inner = inner.app(any_host=True)
        self.mode = mode

    async def _stream(self, request: dict[str, Any], send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        token = request["params"].get("_meta", {}).get("progressToken")
        if self.mode == "sse-progress":
            for n in range(_NOTES):
                params = {"progressToken": token, "progress": n + 1, "total": _NOTES, "message": "p" * _NOTE}
                note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
                await send({"type": "http.response.body", "body": _event(note), "more_body": True})
            text = "streamed"
        else:
            text = "x" * (_MAX_BODY_BYTES + 1)
        result = {"content": [{"type": "text", "text": text}], "structuredContent": {"result": text}, "isError": False}
        final = _event({"jsonrpc": "2.0", "id": request["id"], "result": result})
        for at in range(0, len(final), len(_MIB)):  # in pieces: the event, not one chunk, is over the cap
            await send({"type": "http.response.body", "body": final[at : at + len(_MIB)], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        body = await read_body(receive)
        request = json.loads(body or b"{}")
        if scope["method"] == "POST" and request.get("method") == "tools/call" and self.mode != "json":
            return await self._stream(request, send)
        if scope["method"] == "POST" and request.get("method") == "tools/call":
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"jsonrpc":"2.0","id":1,"result":"', "more_body": True})
            for _ in range(_MAX_BODY_BYTES // len(_MIB) + 1):
                await send({"type": "http.response.body", "body": _MIB, "more_body": True})
            await send({"type": "http.response.body", "body": b'"}'})
            return None
        return await self.inner(scope, replay(body, receive), send)


@pytest.fixture
async def oversized(world: World) -> AsyncIterator[str]:
    async for base in _serve(world, "json"):
        yield base


async def _serve(world: World, mode: str) -> AsyncIterator[str]:
    backend = Upstream()
    async with serve_asgi(_Oversized(backend, mode)) as base:
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


async def test_a_long_stream_of_progress_is_not_capped_in_total(world: World, front: str) -> None:
    notes: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(progress)

    async for _ in _serve(world, "sse-progress"):
        async with mcp_client(f"{front}/acme/big/mcp", world.keys["acme:member"]) as client:
            result = await client.call_tool("echo", {"text": "hello"}, progress_callback=on_progress)
    assert not result.is_error and result.content[0].text == "streamed"  # type: ignore[union-attr]
    assert notes == [float(n + 1) for n in range(_NOTES)]  # every note relayed, in order


async def test_an_sse_result_over_the_cap_fails_the_call_audited(world: World, front: str) -> None:
    async for _ in _serve(world, "sse-result"):
        async with mcp_client(f"{front}/acme/big/mcp", world.keys["acme:member"]) as client:
            result = await client.call_tool("echo", {"text": "hello"})
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and f"event of more than {_MAX_BODY_BYTES // 1_048_576} MiB" in text
    audit = await world.operator.query_audit("acme", tool="echo")
    assert [r.status for r in audit.records] == ["backend_error"]
