"""Decisions come from a snapshot kept until the policy version moves: a write on one
replica reaches every other within a second however long the caches' TTL, and steady
calls read nothing from the catalogue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event

from policy_service import errors
from policy_service.api.server import PolicyServer, start
from policy_service.client import DECISION_ALLOW, DECISION_BLOCKED, PolicyClient
from policy_service.config import Settings
from tests.conftest import World

# Far longer than the revocation bound: only the version can make a change land in time.
LONG_TTL = 30.0


@pytest.fixture
async def other_replica(world: World, settings: Settings) -> AsyncIterator[PolicyClient]:
    replica = await start(settings.model_copy(update={"cache_ttl_seconds": LONG_TTL}), "127.0.0.1:0")
    try:
        async with PolicyClient(f"127.0.0.1:{replica.port}", service_token=world.service_token) as client:
            yield client
    finally:
        await replica.stop(0.5)


async def test_a_revoked_key_is_refused_by_another_replica_within_a_second(
    world: World, other_replica: PolicyClient
) -> None:
    key = await world.operator.create_api_key("acme", "to revoke", "member")
    await other_replica.authorize_tool_call(key.secret, "acme", "tools", "echo", "{}")  # cached there now
    await world.operator.revoke_api_key("acme", key.key.id)
    await asyncio.sleep(1.0)
    with pytest.raises(errors.Unauthenticated):
        await other_replica.authorize_tool_call(key.secret, "acme", "tools", "echo", "{}")


async def test_a_permission_change_reaches_another_replica_within_a_second(
    world: World, other_replica: PolicyClient
) -> None:
    member = world.keys["acme:member"]
    before = await other_replica.authorize_tool_call(member, "acme", "tools", "echo", "{}")
    assert before.decision == DECISION_ALLOW
    await world.operator.set_role_override("member", "acme", "tools", "echo", "blocked", "acme")
    await asyncio.sleep(1.0)
    after = await other_replica.authorize_tool_call(member, "acme", "tools", "echo", "{}")
    assert after.decision == DECISION_BLOCKED


CONDITION = """\
org: acme
toolkits:
  acme/tools:
    echo:
      conditions:
        - name: no-shouting
          when: args.text == "LOUD"
          permission: blocked
"""


async def test_a_policy_condition_reaches_another_replica_within_a_second(
    world: World, other_replica: PolicyClient
) -> None:
    member = world.keys["acme:member"]
    loud = '{"text": "LOUD"}'
    assert (await other_replica.authorize_tool_call(member, "acme", "tools", "echo", loud)).decision == DECISION_ALLOW
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(CONDITION)
    await asyncio.sleep(1.0)
    after = await other_replica.authorize_tool_call(member, "acme", "tools", "echo", loud)
    assert after.decision == DECISION_BLOCKED


async def test_steady_calls_read_no_keys_and_no_catalogue(world: World, settings: Settings) -> None:
    """With production cache settings, calls spread over more than the cache TTL load the key,
    the toolkit's tools and the org's policy conditions once (the snapshot outlives the TTL while nothing changes)."""
    replica: PolicyServer = await start(settings.model_copy(update={"cache_ttl_seconds": 0.5}), "127.0.0.1:0")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(replica.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with PolicyClient(f"127.0.0.1:{replica.port}", service_token=world.service_token) as client:
            for _ in range(3):
                decision = await client.authorize_tool_call(world.keys["acme:member"], "acme", "tools", "echo", "{}")
                assert decision.decision == DECISION_ALLOW
                await asyncio.sleep(0.7)
    finally:
        event.remove(replica.engine.sync_engine, "before_cursor_execute", record)
        await replica.stop(0.5)
    assert sum("FROM tools" in s for s in statements) == 1
    assert sum("FROM api_keys" in s for s in statements) == 1
    assert sum("FROM policy_versions" in s for s in statements) == 1  # the org's conditions, once
