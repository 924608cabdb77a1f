"""A public toolkit owner's `blocked` is a ceiling: another org's defaults and role
overrides may tighten it, never loosen it (globex consumes acme's public `shared`)."""

from __future__ import annotations

import pytest

from tests.conftest import World, mcp_client


@pytest.mark.parametrize("rule", ["org_default", "role_override"])
async def test_consumer_rules_cannot_loosen_the_owners_block(world: World, front: str, rule: str) -> None:
    if rule == "org_default":
        await world.operator.set_org_default("acme", "shared", "wipe", "always_allow", org="globex")
    else:
        await world.operator.set_role_override("member", "acme", "shared", "wipe", "always_allow", org="globex")
    async with mcp_client(f"{front}/acme/shared/mcp", world.keys["globex:member"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("wipe", {"target": "prod"})
    assert "wipe" not in names
    assert result.is_error and "blocked" in result.content[0].text  # type: ignore[union-attr]
    assert world.upstream.calls["wipe"] == 0


async def test_consumer_may_still_tighten_and_owner_may_lift_its_own_block(world: World, front: str) -> None:
    await world.operator.set_org_default("acme", "shared", "echo", "blocked", org="globex")
    await world.operator.set_org_default("acme", "shared", "wipe", "always_allow", org="acme")
    async with mcp_client(f"{front}/acme/shared/mcp", world.keys["globex:member"]) as client:
        assert "echo" not in {t.name for t in (await client.list_tools()).tools}
    async with mcp_client(f"{front}/acme/shared/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("wipe", {"target": "staging"})
    assert not result.is_error and world.upstream.calls["wipe"] == 1
