"""Command-launched (stdio) toolkit backends through the real gateway: registered by the
operator only (org admins are refused, and audited), launched with their own environment,
working directory and rlimits, one pool per tenant, restarted after a crash, and ended
when the front closes. The backend is the conformance fixture over stdio, so what flows
during a call (progress, logs, sampling, elicitation) is checked on this transport too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import pytest_asyncio

from mcp_front.backends.catalogue_sync import sync_catalogue
from mcp_front.backends.upstream import UpstreamError, UpstreamPool, UpstreamTimeout
from policy_service import errors
from policy_service.toolkits.egress import EgressPolicy
from policy_service.toolkits.stdio_backend import StdioSpec, to_address
from tests.conftest import mcp_client
from tests.support.gateway_stack import Gateway, gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = "MONOMCP_STDIO_TEST_SECRET"
SPEC = StdioSpec(
    command=sys.executable,
    args=("-m", "tests.support.stdio_server"),
    env={"GREETING": "hello from the operator"},
    cwd=str(ROOT),
    memory_limit_mb=4096,
    cpu_limit_seconds=120,
)
EGRESS = EgressPolicy(allow_private=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    os.environ[SECRET_NAME] = "the gateway's own secret"  # must never reach a backend process
    try:
        async with gateway(_sqlite_template, tmp_path_factory.mktemp("stdio")) as built:
            await built.operator.upsert_toolkit(
                "acme",
                "local",
                name="local",
                visibility="public",
                backend_stdio=SPEC,
                backend_timeout_seconds=20,
                new_tool_permission="always_allow",
            )
            await sync_catalogue(built.operator, "acme", "local", False, EGRESS)
            yield built
    finally:
        os.environ.pop(SECRET_NAME, None)


def _json(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result
    if result.structured_content:
        return dict(result.structured_content.get("result", result.structured_content))
    return dict(json.loads(result.content[0].text))  # type: ignore[union-attr]


async def test_the_command_runs_with_its_own_environment_directory_and_limits(gw: Gateway) -> None:
    async with mcp_client(gw.endpoint("acme", "local"), gw.keys["acme:member"]) as client:
        launched = _json(await client.call_tool("launched", {}))
    assert launched["greeting"] == "hello from the operator"
    assert SECRET_NAME not in launched["env_names"]  # the gateway's environment stays its own
    assert not any(name.startswith(("MONOMCP_", "JWT_", "DATABASE_")) for name in launched["env_names"])
    assert launched["cwd"] == str(ROOT)
    assert launched["rlimit_as"] == 4096 * 1024 * 1024
    assert launched["rlimit_cpu"] == 120


async def test_progress_logs_sampling_and_elicitation_flow_over_stdio(gw: Gateway) -> None:
    reported: list[float] = []
    logs: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="m"
        )

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"username": "carol", "email": "c@example.com"})

    url = gw.endpoint("acme", "local")
    kwargs: dict[str, Any] = {"sampling_callback": sample, "elicitation_callback": elicit, "logging_callback": on_log}
    async with mcp_client(url, gw.keys["acme:member"], **kwargs) as client:
        done = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        logged = await client.call_tool("test_tool_with_logging", {})
        sampled = await client.call_tool("test_sampling", {"prompt": "meaning of life?"})
        elicited = await client.call_tool("test_elicitation", {"message": "who are you?"})
    assert done.content[0].text == "Tool with progress executed successfully"  # type: ignore[union-attr]
    assert reported == [0, 50, 100]
    assert logged.content[0].text == "Tool with logging executed successfully"  # type: ignore[union-attr]
    assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]
    assert sampled.content[0].text == "LLM response: forty-two"  # type: ignore[union-attr]
    assert "carol" in elicited.content[0].text  # type: ignore[union-attr]


async def test_each_tenant_gets_its_own_process(gw: Gateway) -> None:
    pids = []
    for who in ("acme:member", "globex:member"):  # `local` is public: globex may call it too
        async with mcp_client(gw.endpoint("acme", "local"), gw.keys[who]) as client:
            pids.append(_json(await client.call_tool("launched", {}))["pid"])
    assert pids[0] != pids[1]


async def test_a_crashed_process_fails_its_call_and_is_replaced(gw: Gateway) -> None:
    async with mcp_client(gw.endpoint("acme", "local"), gw.keys["acme:member"]) as client:
        before = _json(await client.call_tool("launched", {}))["pid"]
        crashed = await client.call_tool("crash", {})
        after = _json(await client.call_tool("launched", {}))["pid"]
    assert crashed.is_error
    assert crashed.content[0].text == "The toolkit backend failed: the toolkit's backend process failed"  # type: ignore[union-attr]
    assert after != before
    rows = (await gw.operator.query_audit("acme", tool="crash")).records
    assert [(r.status, r.error) for r in rows if r.status != "started"] == [
        ("backend_error", "backend process exited (exit code 3)")
    ]


async def test_org_admins_cannot_register_a_command_and_the_refusal_is_audited(gw: Gateway) -> None:
    async with gw.client("acme:admin") as admin:
        with pytest.raises(errors.PermissionDenied, match="only the operator can register a stdio backend"):
            await admin.upsert_toolkit("acme", "mine", name="mine", backend_stdio=SPEC)
        # Nor through the URL field: a stdio address is not an http(s) URL.
        with pytest.raises(errors.InvalidArgument):
            await admin.upsert_toolkit("acme", "mine", name="mine", backend_url=to_address(SPEC))
        # They see the command, never the environment, and cannot sync (it would start it).
        shown = await admin.get_toolkit("acme", "local")
        assert shown.backend_transport == "stdio"
        assert shown.backend_url == f"stdio: {sys.executable} -m tests.support.stdio_server"
        with pytest.raises(errors.PermissionDenied, match="only the operator can sync"):
            await sync_catalogue(admin, "acme", "local", False, EGRESS)
    rows = (await gw.operator.query_audit("acme", page_size=200)).records
    refused = [r for r in rows if r.method == "admin/UpsertToolkit" and r.status == "permission_denied"]
    assert len(refused) == 1 and refused[0].actor_display == "acme admin"
    registered = [r for r in rows if r.method == "admin/UpsertToolkit" and r.status == "ok"]
    assert "hello from the operator" not in registered[0].request_json  # env values are not kept
    assert json.loads(registered[0].request_json)["backend_stdio"]["env"] == {"GREETING": "[REDACTED]"}
    assert (await gw.operator.get_toolkit("acme", "local")).backend_url == to_address(SPEC)


async def test_a_command_that_cannot_start_is_a_clear_failure() -> None:
    pool = UpstreamPool(egress=EGRESS)
    missing = to_address(StdioSpec(command="/nonexistent/mcp-server"))
    try:
        with pytest.raises(Exception, match="backend command could not start") as raised:
            await pool.call_tool(missing, {}, "x", {}, 5.0, "t|acme")
        assert raised.value.public == "the toolkit's backend process failed"  # type: ignore[attr-defined]
        await asyncio.sleep(0)
    finally:
        await pool.close()


async def test_a_pool_runs_concurrent_requests_on_separate_processes_and_ends_them() -> None:
    pool = UpstreamPool(egress=EGRESS)
    pooled = to_address(dataclasses.replace(SPEC, pool_size=2))
    try:
        results = await asyncio.gather(
            *(pool.call_tool(pooled, {}, "hold", {"seconds": 1.0}, 30.0, "t|acme") for _ in range(2))
        )
        pids = {int(r["structuredContent"]["result"]) for r in results}
        assert len(pids) == 2  # one process is busy with the first call: the second gets its own
        for pid in pids:
            os.kill(pid, 0)  # both still running between calls
    finally:
        await pool.close()
    for pid in pids:  # the front's shutdown ends them
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_failing_command_is_restarted_with_a_growing_backoff(caplog: pytest.LogCaptureFixture) -> None:
    pool = UpstreamPool(egress=EGRESS)
    dying = to_address(StdioSpec(command=sys.executable, args=("-c", "raise SystemExit(2)")))
    caplog.set_level(logging.WARNING, "monomcp.front.stdio")
    try:
        for _ in range(3):
            with pytest.raises(UpstreamError, match=r"backend process exited \(exit code 2\)"):
                await pool.call_tool(dying, {}, "x", {}, 10.0, "t|acme")
    finally:
        await pool.close()
    waits = [r.getMessage().rsplit("next start in ", 1)[1] for r in caplog.records if "next start" in r.getMessage()]
    assert waits == ["0.25 s", "0.50 s", "1.00 s"]


async def test_a_timed_out_request_is_cancelled_and_the_process_serves_the_next_one() -> None:
    pool = UpstreamPool(egress=EGRESS)
    address = to_address(SPEC)
    try:
        before = (await pool.call_tool(address, {}, "launched", {}, 30.0, "t|acme"))["structuredContent"]["pid"]
        with pytest.raises(UpstreamTimeout):
            await pool.call_tool(address, {}, "test_slow", {"seconds": 5.0}, 0.5, "t|acme")
        after = await pool.call_tool(address, {}, "launched", {}, 30.0, "t|acme")
    finally:
        await pool.close()
    # The same process answers, and with the answer to this request, not the abandoned one.
    assert after["structuredContent"]["pid"] == before
