"""Hypothesis-generated JSON-RPC bodies and header sets against a real running front
(policy service, upstream and front over loopback). Properties: no 5xx, no crash, no
tool execution without an audit row, and another org's normal call still works after.

Scale with MONOMCP_FUZZ_EXAMPLES (default 600 clean + 150 hostile; `make fuzz` runs many more)."""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from policy_service.config import Settings
from policy_service.storage.database import create_engine
from tests.conftest import World
from tests.fuzz.strategies import PATHS, bodies, header_sets
from tests.fuzz.survey import check

EXAMPLES = int(os.environ.get("MONOMCP_FUZZ_EXAMPLES", "600"))
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
NORMAL_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "ok"}},
}
MCP_ACCEPT = "application/json, text/event-stream"
# Another org's normal call is checked this often, and once after the whole run.
NORMAL_CALL_EVERY = 10


class Stack:
    """The running front plus the facts the properties check against."""

    def __init__(self, world: World, front: str, settings_: Settings, caplog: pytest.LogCaptureFixture) -> None:
        self.world = world
        self.caplog = caplog
        self.front = front
        self.engine = create_engine(settings_.database_url)
        self.http = httpx.AsyncClient(timeout=30)
        self.sent = 0

    def crashes(self) -> list[str]:
        """Unhandled exceptions the servers logged (uvicorn's 'Exception in ASGI application', etc.)."""
        return [r.getMessage()[:200] for r in self.caplog.records if r.levelno >= logging.ERROR]

    def executions(self) -> int:
        return sum(self.world.upstream.calls.values())

    async def audited_allows(self) -> int:
        """Audit rows that let a tool run (an execution needs one, written before it)."""
        async with self.engine.connect() as conn:
            sql = "SELECT count(*) FROM audit_request_logs WHERE method='tools/call' AND decision='allow'"
            return int((await conn.execute(text(sql))).scalar_one())

    async def send(self, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        return await self.http.post(self.front + path, content=body, headers=headers)

    async def normal_call_from_globex(self) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.world.keys['globex:member']}", "Accept": MCP_ACCEPT}
        return await self.http.post(f"{self.front}/acme/shared/mcp", json=NORMAL_CALL, headers=headers)

    async def assert_still_serving(self) -> None:
        normal = await self.normal_call_from_globex()
        assert normal.status_code == 200 and '"text":"ok"' in normal.text.replace(" ", ""), normal.text[:300]

    async def close(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()


@pytest.fixture
async def stack(world: World, front: str, settings: Settings, caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.ERROR)
    s = Stack(world, front, settings, caplog)
    yield s
    try:
        await s.assert_still_serving()
    finally:
        await s.close()


async def check_one(stack: Stack, path: str, headers: dict[str, str], body: bytes) -> None:
    before, crashes = stack.executions(), len(stack.crashes())
    response = await stack.send(path, headers, body)
    case = {"path": path, "headers": headers, "body": body, "status": response.status_code}
    check(response.status_code < 500, f"{response.status_code} {response.text[:300]!r}", case)
    check(len(stack.crashes()) == crashes, f"unhandled exception logged: {stack.crashes()[crashes:]}", case)
    if stack.executions() > before:
        check(await stack.audited_allows() >= stack.executions(), "a tool ran without an audit row", case)
    stack.sent += 1
    if stack.sent % NORMAL_CALL_EVERY == 0:
        await stack.assert_still_serving()


def run_fuzz(clean: bool) -> Any:
    @settings(FUZZ, max_examples=EXAMPLES if clean else max(1, EXAMPLES // 4))
    @given(data=st.data())
    async def fuzz(stack: Stack, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(PATHS), label="path")
        headers = data.draw(header_sets(stack.world.keys), label="headers")
        body = data.draw(bodies(clean), label="body")
        await check_one(stack, path, headers, body)

    return fuzz


test_front_survives_generated_requests = run_fuzz(clean=True)

# NaN/Infinity, control characters in names and unparseable bodies (issue 10, fixed at the edge).
test_front_survives_hostile_requests = run_fuzz(clean=False)
