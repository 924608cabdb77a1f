"""The audit log through the real front: one row per request, durable, redacted, verifiable."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys

import httpx
from sqlalchemy import text

from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.config import Settings
from policy_service.storage.database import create_engine, session_factory
from tests.conftest import OPERATOR, World, mcp_client
from tests.support.servers import free_port


async def test_every_request_is_one_row_with_the_right_status(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.list_tools()
        await client.call_tool("echo", {"text": "hi"})
        await client.call_tool("fails", {})
        await client.call_tool("wipe", {"target": "x"})
        await client.call_tool("transfer", {"amount": 1, "to": "a"})
        await client.call_tool("add", {"a": "x", "b": 1})
    records = (await world.operator.query_audit("acme", page_size=100)).records
    by_method: dict[str, list[str]] = {}
    for r in records:
        by_method.setdefault(r.method, []).append(f"{r.tool}:{r.status}")
    assert sorted(by_method["tools/call"]) == sorted(
        ["echo:ok", "fails:tool_error", "wipe:blocked", "transfer:pending_approval", "add:invalid"]
    )
    assert by_method["tools/list"] == [":ok"]
    assert "initialize" in by_method
    echo = next(r for r in records if r.tool == "echo")
    assert json.loads(echo.request_json) == {"name": "echo", "arguments": {"text": "hi"}}
    assert json.loads(echo.response_json)["content"][0]["text"] == "hi"
    assert echo.actor_type == "api_key" and echo.org_slug == "acme" and echo.completed_at.seconds > 0
    assert echo.permission == 1 and echo.decision == "allow" and echo.request_id


async def test_secrets_are_redacted_before_storage(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.call_tool("login", {"username": "ann", "password": "hunter2"})
    record = (await world.operator.query_audit("acme", tool="login")).records[0]
    assert "hunter2" not in record.request_json and "mmcp_AAAA" not in record.response_json
    assert "request.arguments.password" in record.redacted_paths
    assert "response.structuredContent.token" in record.redacted_paths


async def test_audit_pagination_is_stable_under_concurrent_inserts(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        for i in range(12):
            await client.call_tool("echo", {"text": str(i)})
        first = await world.operator.query_audit("acme", tool="echo", page_size=5)
        for i in range(5):
            await client.call_tool("echo", {"text": f"late {i}"})
        seen = [r.seq for r in first.records]
        token = first.next_page_token
        while token:
            page = await world.operator.query_audit("acme", tool="echo", page_size=5, page_token=token)
            seen += [r.seq for r in page.records]
            token = page.next_page_token
    assert len(seen) == len(set(seen)) == 12  # every original row once, none skipped, none repeated
    assert seen == sorted(seen, reverse=True)


async def test_verify_detects_edited_deleted_and_reordered_rows(world: World, front: str, settings: Settings) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        for i in range(6):
            await client.call_tool("echo", {"text": str(i)})
    engine = create_engine(settings.database_url)
    assert await AuditDigester(session_factory(engine), DigestPolicy(settle=dt.timedelta(0))).write_digest()
    assert (await world.operator.verify_audit()).ok
    async with engine.begin() as conn:
        seqs = [r[0] for r in await conn.execute(text("SELECT seq FROM audit_request_logs ORDER BY seq"))]
        await conn.execute(text("UPDATE audit_request_logs SET status='ok', error='' WHERE seq=:s"), {"s": seqs[1]})
        await conn.execute(text("UPDATE audit_request_logs SET response_payload='{}' WHERE seq=:s"), {"s": seqs[2]})
        await conn.execute(text("DELETE FROM audit_request_logs WHERE seq=:s"), {"s": seqs[3]})
        a, b = seqs[4], seqs[5]
        rows = {
            r[0]: r[1]
            for r in await conn.execute(
                text("SELECT seq, call_id FROM audit_request_logs WHERE seq IN (:a, :b)"), {"a": a, "b": b}
            )
        }
        # Swap two rows' positions: move a aside, b into a, a into b.
        await conn.execute(text("UPDATE audit_request_logs SET seq=-1 WHERE seq=:a"), {"a": a})
        await conn.execute(text("UPDATE audit_request_logs SET seq=:a WHERE seq=:b"), {"a": a, "b": b})
        await conn.execute(text("UPDATE audit_request_logs SET seq=:b WHERE seq=-1"), {"b": b})
        assert rows
    await engine.dispose()
    result = await world.operator.verify_audit()
    assert not result.ok
    problems = "\n".join(result.problems)
    assert f"row {seqs[2]} edited" in problems
    assert f"row {seqs[3]} deleted" in problems
    assert "reordered" in problems and str(a) in problems and str(b) in problems


async def test_front_killed_mid_call_leaves_a_started_row(world: World, settings: Settings, policy_addr: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "MONOMCP_POLICY_ADDR": policy_addr,
        "MONOMCP_OPERATOR_TOKEN": OPERATOR,
        "MONOMCP_SERVICE_TOKEN": world.service_token,
        "MONOMCP_REQUEST_STATE_KEY": "test-request-state-key",
        "MONOMCP_BACKEND_ALLOW_PRIVATE": "true",  # the test upstream listens on loopback
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monomcp_cli.main",
        "serve",
        "front",
        "--listen",
        f"127.0.0.1:{port}",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(200):
                try:
                    await http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            call = asyncio.create_task(
                http.post(
                    f"http://127.0.0.1:{port}/acme/tools/mcp",
                    headers={
                        "Authorization": f"Bearer {world.keys['acme:member']}",
                        "Accept": "application/json, text/event-stream",
                    },
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "tools/call",
                        "params": {"name": "slow", "arguments": {"seconds": 1.5}},
                    },
                )
            )
            for _ in range(200):
                if world.upstream.calls["slow"]:
                    break
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 5)
            try:
                await call
            except httpx.HTTPError:
                pass
    finally:
        if proc.returncode is None:
            proc.kill()
    records = (await world.operator.query_audit("acme", tool="slow")).records
    assert [r.status for r in records] == ["started"]
    engine = create_engine(settings.database_url)
    digester = AuditDigester(session_factory(engine), DigestPolicy(abandon_after=dt.timedelta(0)))
    assert await digester.sweep_abandoned() == 1
    await engine.dispose()
    assert [r.status for r in (await world.operator.query_audit("acme", tool="slow")).records] == ["abandoned"]


async def test_retention_prunes_old_digested_rows_and_verify_still_holds(
    world: World, front: str, settings: Settings
) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        for i in range(3):
            await client.call_tool("echo", {"text": f"old {i}"})
    engine = create_engine(settings.database_url)
    digester = AuditDigester(
        session_factory(engine),
        DigestPolicy(settle=dt.timedelta(0), retention=True, stale_after=dt.timedelta(days=36500)),
    )
    assert await digester.write_digest() is not None
    async with engine.begin() as conn:  # age the digested rows
        await conn.execute(
            text("UPDATE audit_request_logs SET created_at = '2020-01-01 00:00:00', call_at = '2020-01-01 00:00:00'")
        )
    # Re-digest after the edit would hide it, so build a fresh chain over the aged rows.
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_digests"))
    assert await digester.write_digest() is not None
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.call_tool("echo", {"text": "new"})
    await digester.write_digest()
    removed = await digester.apply_retention(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    assert removed > 0
    assert (await digester.verify()).ok
    remaining = (await world.operator.query_audit("acme", tool="echo")).records
    assert [r.request_json for r in remaining] == ['{"name":"echo","arguments":{"text":"new"}}']
    async with engine.begin() as conn:  # a deletion inside the retained range is still caught
        await conn.execute(text("DELETE FROM audit_request_logs WHERE tool = 'echo'"))
    await engine.dispose()
    assert not (await digester.verify()).ok


async def test_requests_refused_before_mcp_handling_are_audited(world: World, front: str) -> None:
    accept = {"Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient() as http:
        await http.post(f"{front}/acme/tools/mcp", json=ping, headers=accept)
        await http.post(f"{front}/acme/tools/mcp", json=ping, headers={**accept, "Authorization": "Bearer nope"})
        await http.post(
            f"{front}/acme/tools/mcp",
            json=ping,
            headers={**accept, "Authorization": f"Bearer {world.keys['globex:member']}"},
        )
    records = (await world.operator.query_audit(page_size=50)).records
    refused = sorted((r.method, r.status, r.org_slug) for r in records if r.method == "http")
    assert refused == [
        ("http", "not_found", "globex"),
        ("http", "unauthenticated", ""),
        ("http", "unauthenticated", ""),
    ]
    assert all("nope" not in r.request_json + r.error for r in records)
