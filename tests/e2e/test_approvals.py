"""The approval queue through the real front with the SDK client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from policy_service import errors
from tests.conftest import World, mcp_client

ARGS = {"amount": 100, "to": "bob"}


async def _request(front: str, key: str, args: dict[str, Any] = ARGS, mode: str = "legacy") -> Any:
    async with mcp_client(f"{front}/acme/tools/mcp", key, mode) as client:
        return await client.call_tool("transfer", args)


async def _age_consumption(settings: Any, approval_id: str) -> None:
    """Time travel: the approval was consumed an hour ago."""
    from datetime import timedelta

    from sqlalchemy import text

    from policy_service.storage.database import create_engine
    from policy_service.storage.models import utcnow

    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        when = (utcnow() - timedelta(hours=1)).replace(tzinfo=None)
        await conn.execute(text("UPDATE approvals SET updated_at = :t WHERE id = :id"), {"t": when, "id": approval_id})
    await engine.dispose()


def _approval_id(result: Any) -> str:
    assert result.is_error and result.meta["monomcp/executed"] is False
    return str(result.meta["monomcp/approval"]["id"])


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_pending_then_approve_then_recall_runs_once(world: World, front: str, mode: str, settings: Any) -> None:
    first = await _request(front, world.keys["acme:member"], mode=mode)
    approval_id = _approval_id(first)
    text = first.content[0].text
    assert approval_id in text and "approval_status" in text and "/console/approvals/" in text
    assert world.upstream.calls["transfer"] == 0

    again = await _request(front, world.keys["acme:member"], mode=mode)
    assert _approval_id(again) == approval_id  # dedup: same approval, no duplicate

    async with world.client("acme:admin") as admin:
        pending = await admin.list_approvals(status="pending")
        assert [a.id for a in pending.approvals] == [approval_id]
        await admin.decide_approval(approval_id, approve=True)

    executed = await _request(front, world.keys["acme:member"], mode=mode)
    assert not executed.is_error and executed.content[0].text == "sent 100 to bob"
    assert world.upstream.calls["transfer"] == 1

    # Right after the run, an identical call is a duplicate of it: told, not queued again.
    duplicate = await _request(front, world.keys["acme:member"], mode=mode)
    assert _approval_id(duplicate) == approval_id and "already used by call" in duplicate.content[0].text
    async with world.client("acme:admin") as admin:
        assert (await admin.list_approvals(status="pending")).approvals == []
    # Once the reuse window has passed, the next identical call asks again.
    await _age_consumption(settings, approval_id)
    after = await _request(front, world.keys["acme:member"], mode=mode)
    assert _approval_id(after) != approval_id
    assert world.upstream.calls["transfer"] == 1


async def test_approval_status_tool_reports_progress(world: World, front: str) -> None:
    approval_id = _approval_id(await _request(front, world.keys["acme:member"]))
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        status = await client.call_tool("approval_status", {"approval_id": approval_id})
        assert status.structured_content["approval"]["status"] == "pending"
        async with world.client("acme:admin") as admin:
            await admin.decide_approval(approval_id, approve=True)
        status = await client.call_tool("approval_status", {"approval_id": approval_id})
        assert status.structured_content["approval"]["status"] == "approved"
        assert "same arguments" in status.content[0].text
        bad = await client.call_tool("approval_status", {"approval_id": 42})
        assert bad.is_error
    async with mcp_client(f"{front}/acme/shared/mcp", world.keys["globex:member"]) as other:
        foreign = await other.call_tool("approval_status", {"approval_id": approval_id})
    assert foreign.is_error and "No approval" in foreign.content[0].text


async def test_different_arguments_are_a_different_request(world: World, front: str) -> None:
    a = _approval_id(await _request(front, world.keys["acme:member"]))
    b = _approval_id(await _request(front, world.keys["acme:member"], {"amount": 5, "to": "bob"}))
    assert a != b
    async with world.client("acme:admin") as admin:
        await admin.decide_approval(a, approve=True)
    result = await _request(front, world.keys["acme:member"], {"amount": 5, "to": "bob"})
    assert result.is_error and world.upstream.calls["transfer"] == 0


async def test_deny_with_reason_reaches_the_caller(world: World, front: str) -> None:
    approval_id = _approval_id(await _request(front, world.keys["acme:member"]))
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.InvalidArgument):
            await admin.decide_approval(approval_id, approve=False, reason="  ")
        await admin.decide_approval(approval_id, approve=False, reason="bob is not a vendor")
        with pytest.raises(errors.FailedPrecondition):
            await admin.decide_approval(approval_id, approve=True)
    denied = await _request(front, world.keys["acme:member"])
    assert denied.is_error and "bob is not a vendor" in denied.content[0].text
    assert world.upstream.calls["transfer"] == 0


async def test_self_approval_non_admin_and_cross_org_are_refused(world: World, front: str) -> None:
    approval_id = _approval_id(await _request(front, world.keys["acme:admin"]))
    async with world.client("acme:admin") as same_key:
        with pytest.raises(errors.PermissionDenied) as own:
            await same_key.decide_approval(approval_id, approve=True)
        assert own.value.reason == "SELF_APPROVAL"
    async with world.client("acme:member") as member:
        with pytest.raises(errors.PermissionDenied):
            await member.decide_approval(approval_id, approve=True)
    async with world.client("globex:admin") as other_org:
        with pytest.raises(errors.NotFound):
            await other_org.decide_approval(approval_id, approve=True)
    # A second admin key may be the same person's: an admin's request needs a provably other person.
    async with world.client("acme:admin2") as second_admin:
        with pytest.raises(errors.PermissionDenied) as second:
            await second_admin.decide_approval(approval_id, approve=True)
        assert second.value.reason == "SELF_APPROVAL"
    approved = await world.operator.decide_approval(approval_id, approve=True)
    assert approved.decided_by == "operator"


async def test_pending_and_unused_approvals_expire(world: World, front: str, settings: Any) -> None:
    from sqlalchemy import text

    from policy_service.storage.database import create_engine

    approval_id = _approval_id(await _request(front, world.keys["acme:member"]))
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:  # time travel: the approval's expiry passes
        await conn.execute(text("UPDATE approvals SET expires_at = created_at WHERE id = :id"), {"id": approval_id})
    await engine.dispose()
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.FailedPrecondition):
            await admin.decide_approval(approval_id, approve=True)
        assert (await admin.get_approval(approval_id)).status == 4  # EXPIRED
    fresh = _approval_id(await _request(front, world.keys["acme:member"]))
    assert fresh != approval_id


async def test_watch_streams_new_and_decided_approvals(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        seen: list[tuple[str, int]] = []

        async def watch() -> None:
            async for approval in admin.watch_approvals():
                seen.append((approval.id, approval.status))
                if len(seen) == 2:
                    return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        approval_id = _approval_id(await _request(front, world.keys["acme:member"]))
        async with world.client("acme:admin2") as other:
            await other.decide_approval(approval_id, approve=True)
        await asyncio.wait_for(watcher, 10)
    assert seen == [(approval_id, 1), (approval_id, 2)]


async def test_concurrent_recalls_after_one_approval_run_exactly_once(world: World, front: str) -> None:
    approval_id = _approval_id(await _request(front, world.keys["acme:member"]))
    async with world.client("acme:admin") as admin:
        await admin.decide_approval(approval_id, approve=True)
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        results = await asyncio.gather(*(client.call_tool("transfer", ARGS) for _ in range(100)))
    assert world.upstream.calls["transfer"] == 1
    assert sum(1 for r in results if not r.is_error) == 1


async def test_watch_refuses_members_other_orgs_and_bad_credentials(world: World) -> None:
    from policy_service.client import PolicyClient

    cases = [
        (world.keys["acme:member"], "", errors.PermissionDenied),
        (world.keys["globex:admin"], "acme", errors.NotFound),
        ("mmcp_not_a_real_key", "", errors.Unauthenticated),
    ]
    for key, org, expected in cases:
        async with PolicyClient(world.policy_addr, key) as client:
            with pytest.raises(expected):
                async for _ in client.watch_approvals(org):
                    break
