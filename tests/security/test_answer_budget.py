"""Large answers share one budget per front process (docs/adr/0050).

Red team round three (ADR 46): eight concurrent ~14 MiB answers took a shared front to
1.4 GB, and nothing bounded the sum: one tenant's big answers could push the front into the
OOM killer with every tenant's calls. Here the front's budget is set to 6 MiB: while one
4 MiB answer is held, the other large answers wait their bounded time and their calls fail
with a JSON-RPC error that says the tool ran (audited `error`), while another org's small
calls all succeed. Before the budget, every large answer was read at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.types import Receive, Scope, Send

from mcp_front.edge.body import replay
from tests.conftest import make_settings
from tests.support.attack_stack import (
    ACCEPT,
    JWT_AUDIENCE,
    JWT_ISSUER,
    LEGACY,
    Stack,
    attack_stack,
    new_request_id,
    tools_call,
)
from tests.support.raw_http import raw_post
from tests.support.servers import read_body, serve_asgi
from tests.support.upstream import Upstream

pytestmark = pytest.mark.asyncio(loop_scope="module")

MIB = 1_048_576
BUDGET = 6 * MIB
LARGE = 4 * MIB  # one fits the budget, two do not
# How the backend frames its answer; `sdk` is `json` through the SDK's path (no protocol
# version header: the lean path hands the request to the SDK).
FRAMINGS = ("json", "chunked", "sse", "sdk")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(database_url: str) -> AsyncIterator[Stack]:
    settings = make_settings(
        database_url,
        JWT_ISSUER=JWT_ISSUER,
        JWT_AUDIENCE=JWT_AUDIENCE,
        MONOMCP_ANSWER_BUDGET_BYTES=BUDGET,
        MONOMCP_ANSWER_BUDGET_WAIT_SECONDS=0.5,
    )
    async with attack_stack(settings) as built:
        yield built


class GatedAnswers:
    """The test upstream, except that `echo` answers with `size` bytes in `framing` (`json` with
    a Content-Length, `chunked` JSON, an `sse` stream): all but the last byte at once, that
    byte only once `gate` is open, so the answer the front admitted first keeps its share of
    the budget until the test lets it finish."""

    def __init__(self, size: int, framing: str) -> None:
        self.inner = Upstream().app(any_host=True)
        self.size, self.framing = size, "json" if framing == "sdk" else framing
        self.gate = asyncio.Event()
        self.calls = 0

    def _answer(self, request_id: Any) -> bytes:
        filler = "x" * (self.size - 100)
        message = {"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"type": "text", "text": filler}]}}
        data = json.dumps(message).encode()
        return b"event: message\ndata: " + data + b"\n\n" if self.framing == "sse" else data

    async def _answer_gated(self, request: dict[str, Any], send: Send) -> None:
        self.calls += 1
        body = self._answer(request["id"])
        kind = b"text/event-stream" if self.framing == "sse" else b"application/json"
        headers = [(b"content-type", kind)]
        if self.framing == "json":
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body[:-1], "more_body": True})
        await self.gate.wait()
        await send({"type": "http.response.body", "body": body[-1:]})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        body = await read_body(receive)
        request = json.loads(body or b"{}")
        if request.get("method") == "tools/call":
            return await self._answer_gated(request, send)
        return await self.inner(scope, replay(body, receive), send)


async def _serve(stack: Stack, backend: GatedAnswers) -> AsyncIterator[None]:
    async with serve_asgi(backend) as base:
        await stack.operator.upsert_toolkit(
            "acme", "big", name="big", backend_url=f"{base}/mcp", backend_timeout_seconds=30.0
        )
        await stack.operator.sync_tools("acme", "big", await Upstream().catalogue())
        yield


async def _big_call(stack: Stack, request_id: str, framing: str = "json") -> dict[str, Any]:
    body = json.dumps(tools_call("echo", {"text": "big"})).encode()
    headers = [("Accept", ACCEPT), ("Content-Type", "application/json"), ("X-Request-Id", request_id)]
    if framing != "sdk":
        headers.append(("MCP-Protocol-Version", LEGACY))
    headers.append(("Authorization", f"Bearer {stack.keys['acme:member']}"))
    response = await raw_post(f"{stack.front}/acme/big/mcp", headers, body)
    assert response.status_code == 200, response.content[:200]
    return dict(response.json())


async def _small_call(stack: Stack) -> dict[str, Any]:
    """Another org's caller, another toolkit, a small answer."""
    body = tools_call("echo", {"text": "small"})
    response = await stack.post("/acme/shared/mcp", stack.keys["globex:member"], body)
    return dict(response.json())


async def _metrics(stack: Stack) -> dict[str, float]:
    """The front's unlabelled samples by name."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{stack.front}/metrics")).text
    lines = (line.split(" ") for line in text.splitlines() if line and not line.startswith("#"))
    return {parts[0]: float(parts[1]) for parts in lines if len(parts) == 2}


async def _until_all_but_one_answered(calls: list[asyncio.Task[dict[str, Any]]]) -> None:
    """Returns when every large call but the one holding the budget has its answer (the
    budget's refusals); without a budget none can answer while the gate is shut, so this gives
    up after a while and the test sees them all succeed."""
    for _ in range(300):
        if sum(call.done() for call in calls) >= len(calls) - 1:
            return
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_large_answers_beyond_the_budget_fail_and_small_ones_pass(stack: Stack, framing: str) -> None:
    backend = GatedAnswers(LARGE, framing)
    async for _ in _serve(stack, backend):
        marks = [new_request_id(f"budget-{framing}-{n}") for n in range(8)]
        calls = [asyncio.ensure_future(_big_call(stack, mark, framing)) for mark in marks]
        await _until_all_but_one_answered(calls)
        victims = [await _small_call(stack) for _ in range(10)]  # while the budget is full
        backend.gate.set()
        answers = await asyncio.gather(*calls)
        again = await _big_call(stack, new_request_id("budget-again"), framing)  # the budget was given back
    assert backend.calls == 9  # every tool ran: the budget bounds what the front reads, not what runs
    assert all(v["result"]["content"][0]["text"] == "small" for v in victims)
    served = [a for a in answers if "result" in a]
    refused = [a for a in answers if "error" in a]
    assert len(served) == 1 and len(served[0]["result"]["content"][0]["text"]) > LARGE - MIB
    assert len(refused) == 7 and "result" in again
    for answer in refused:
        message = answer["error"]["message"]
        assert answer["error"]["code"] == -32603 and message.startswith("The tool ran, but its answer")
        assert "too many large answers" in message and "127.0.0.1" not in message
    rows = [row for mark in marks for row in await stack.audit_rows(mark)]
    completed = sorted((r["status"], r["error"]) for r in rows if r["status"] != "started")
    assert [s[0] for s in completed] == ["error"] * 7 + ["ok"]
    assert all(error.startswith("answer budget: its answer") for status, error in completed if status == "error")
    scrape = await _metrics(stack)
    assert scrape["monomcp_front_answer_bytes_held"] == 0  # every holding was given back
    assert scrape["monomcp_front_answers_refused_total"] >= 7


async def test_an_answer_larger_than_the_whole_budget_is_refused_at_once(stack: Stack) -> None:
    backend = GatedAnswers(BUDGET + MIB, "json")
    backend.gate.set()
    async for _ in _serve(stack, backend):
        mark = new_request_id("budget-whole")
        answer = await _big_call(stack, mark)
        victim = await _small_call(stack)
    assert "larger than this gateway holds for all answers at once (6 MiB)" in answer["error"]["message"]
    assert victim["result"]["content"][0]["text"] == "small"
    assert [r["status"] for r in await stack.audit_rows(mark)] == ["started", "error"]


class BigHandshake:
    """The test upstream, except that its answer to `initialize` is larger than the budget:
    the front refuses it before any tools/call reaches the backend."""

    def __init__(self) -> None:
        self.inner = Upstream().app(any_host=True)
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        body = await read_body(receive)
        request = json.loads(body or b"{}")
        self.calls += request.get("method") == "tools/call"
        if request.get("method") == "initialize":
            result = {
                "protocolVersion": LEGACY,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "big", "version": "1"},
                "instructions": "x" * (BUDGET + MIB),
            }
            data = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": data})
            return None
        return await self.inner(scope, replay(body, receive), send)


async def test_a_handshake_answer_refused_by_the_budget_never_says_the_tool_ran(stack: Stack) -> None:
    """Red team (review 2): the budget refused the backend's answer to the front's own
    `initialize`, before the tools/call was sent, and the client was told "The tool ran, but
    its answer … was not read" (a caller then treats a call that never ran as one that did)."""
    backend = BigHandshake()
    async with serve_asgi(backend) as base:
        await stack.operator.upsert_toolkit("acme", "big", name="big", backend_url=f"{base}/mcp")
        await stack.operator.sync_tools("acme", "big", await Upstream().catalogue())
        mark = new_request_id("budget-handshake")
        answer = await _big_call(stack, mark)
    assert backend.calls == 0
    text = json.dumps(answer)
    assert "The tool ran" not in text and "was not read" in text and "handshake" in text
    assert [r["status"] for r in await stack.audit_rows(mark)] == ["started", "backend_error"]
