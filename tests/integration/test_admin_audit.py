"""Admin actions are audited in the same chain as MCP requests, with the channel they came
through; reads are not actions; a refused action is audited too."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from policy_service import errors
from policy_service.client import PolicyClient
from tests.conftest import World


async def _admin_rows(world: World, org: str) -> list[tuple[str, str, str, str]]:
    records = (await world.operator.query_audit(org, page_size=200)).records
    return [(r.method, r.source, r.status, r.actor_display) for r in records if r.method.startswith("admin/")]


async def test_key_changes_are_audited_with_their_source_and_refusals_too(world: World) -> None:
    async with PolicyClient(world.policy_addr, world.keys["acme:admin"], source="cli") as admin:
        created = await admin.create_api_key("acme", "ci bot", "member")
        await admin.list_api_keys("acme")  # a read: not an action
        await admin.revoke_api_key("acme", created.key.id)
    async with PolicyClient(world.policy_addr, world.keys["acme:member"], source="cli") as member:
        with pytest.raises(errors.PermissionDenied):
            await member.create_api_key("acme", "sneaky", "admin")
    rows = await _admin_rows(world, "acme")
    assert ("admin/CreateApiKey", "cli", "ok", "acme admin") in rows
    assert ("admin/RevokeApiKey", "cli", "ok", "acme admin") in rows
    assert ("admin/CreateApiKey", "cli", "permission_denied", "acme member") in rows
    assert not any(method == "admin/ListApiKeys" for method, *_ in rows)
    created_row = next(
        r
        for r in (await world.operator.query_audit("acme", page_size=200)).records
        if r.method == "admin/CreateApiKey" and r.status == "ok"
    )
    assert created.secret not in created_row.request_json + created_row.response_json


async def test_a_refusal_reaches_the_caller_only_after_its_row_is_durable(world: World, database_url: str) -> None:
    """gRPC sends a refusal's status as soon as the servicer aborts; the row must come first."""
    if not database_url.startswith("postgresql"):
        pytest.skip("holds a Postgres table lock on the audit log")
    lock = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with PolicyClient(world.policy_addr, world.keys["acme:member"], source="cli") as member:
            async with lock.transaction():
                await lock.execute("LOCK TABLE audit_request_logs IN EXCLUSIVE MODE")
                refused = asyncio.ensure_future(member.create_api_key("acme", "sneaky", "admin"))
                done, _ = await asyncio.wait({refused}, timeout=1.0)
                assert not done, "the refusal was answered while its audit row could not be written"
            with pytest.raises(errors.PermissionDenied):
                await refused
    finally:
        await lock.close()
    assert ("admin/CreateApiKey", "cli", "permission_denied", "acme member") in await _admin_rows(world, "acme")


async def test_operator_actions_are_filed_under_the_org_they_touched(world: World) -> None:
    await world.operator.create_api_key("globex", "made by the operator", "member")
    rows = await _admin_rows(world, "globex")
    assert any(method == "admin/CreateApiKey" and source == "grpc" for method, source, _, _ in rows)


async def test_rest_decisions_are_audited_as_api(world: World, front: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/api/v1/keys",
            json={"name": "from rest", "role": "member"},
            headers={"Authorization": f"Bearer {world.keys['acme:admin']}"},
        )
    assert response.status_code in (200, 201)
    assert ("admin/CreateApiKey", "api", "ok", "acme admin") in await _admin_rows(world, "acme")


async def test_an_action_on_an_unreadable_id_is_refused_as_invalid_and_still_audited(world: World) -> None:
    """The before-snapshot reads the object before the servicer validates the request: a NUL in
    the id (which Postgres refuses) must still get the servicer's INVALID_ARGUMENT, not an
    internal error that carries the SQL."""
    async with PolicyClient(world.policy_addr, world.keys["acme:admin"], source="cli") as admin:
        with pytest.raises(errors.InvalidArgument):
            await admin.revoke_api_key("acme", "\x00")
    rows = await _admin_rows(world, "acme")
    assert ("admin/RevokeApiKey", "cli", "invalid_argument", "acme admin") in rows
