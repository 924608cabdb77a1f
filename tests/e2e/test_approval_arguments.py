"""Approvers see exactly the arguments that will run, while the approval is live; the
exact copy is purged once it is used, denied or expired, and the audit stays redacted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import text

from policy_service.storage.database import create_engine
from tests.conftest import World, mcp_client

SECRET = "sk-proj-" + "Z" * 32


async def _call(front: str, key: str, to: str) -> Any:
    async with mcp_client(f"{front}/acme/tools/mcp", key) as client:
        return await client.call_tool("transfer", {"amount": 1, "to": to})


async def _stored_exact(settings: Any, approval_id: str) -> str:
    engine = create_engine(settings.database_url)
    async with engine.connect() as conn:
        value = (
            await conn.execute(text("SELECT arguments_exact FROM approvals WHERE id = :id"), {"id": approval_id})
        ).scalar_one()
    await engine.dispose()
    return str(value)


async def test_approver_sees_the_exact_arguments_until_the_call_runs(world: World, front: str, settings: Any) -> None:
    exact = json.dumps({"amount": 1, "to": SECRET}, sort_keys=True, separators=(",", ":"))
    async with world.client("acme:admin") as admin:
        seen: list[str] = []

        async def watch() -> None:
            async for approval in admin.watch_approvals():
                seen.append(approval.arguments_json)
                return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        first = await _call(front, world.keys["acme:member"], SECRET)
        approval_id = first.meta["monomcp/approval"]["id"]
        assert SECRET not in first.content[0].text  # the requester's result stays redacted
        await asyncio.wait_for(watcher, 10)
        assert seen == [exact]
        assert (await admin.get_approval(approval_id)).arguments_json == exact
        assert [a.arguments_json for a in (await admin.list_approvals(status="pending")).approvals] == [exact]
        decided = await admin.decide_approval(approval_id, approve=True)
        assert decided.arguments_json == exact
        ran = await _call(front, world.keys["acme:member"], SECRET)
        assert not ran.is_error and ran.content[0].text == f"sent 1 to {SECRET}"  # the real value ran
        used = await admin.get_approval(approval_id)
    assert SECRET not in used.arguments_json and "[REDACTED]" in used.arguments_json
    assert await _stored_exact(settings, approval_id) == ""
    async with world.client("globex:admin") as other:
        assert all(SECRET not in a.arguments_json for a in (await other.list_approvals()).approvals)
    records = (await world.operator.query_audit("acme", tool="transfer")).records
    assert records and all(SECRET not in r.request_json for r in records)


async def test_exact_arguments_are_purged_on_denial_and_expiry(world: World, front: str, settings: Any) -> None:
    denied = (await _call(front, world.keys["acme:member"], SECRET)).meta["monomcp/approval"]["id"]
    expired = (await _call(front, world.keys["acme:member"], SECRET + "x")).meta["monomcp/approval"]["id"]
    assert SECRET in await _stored_exact(settings, denied)
    async with world.client("acme:admin") as admin:
        await admin.decide_approval(denied, approve=False, reason="no")
        engine = create_engine(settings.database_url)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE approvals SET expires_at = created_at WHERE id = :id"), {"id": expired})
        await engine.dispose()
        assert (await admin.get_approval(expired)).status == 4  # EXPIRED
    assert await _stored_exact(settings, denied) == ""
    assert await _stored_exact(settings, expired) == ""
