"""Catalogue items of every kind over the real gRPC API: a tool and a prompt may share a
name without meeting, a tools-only sync never prunes resources, the owner's block is a
ceiling for consumers, and AuthorizeItem answers unknown and blocked items alike."""

from __future__ import annotations

import json

import pytest

from policy_service import errors
from policy_service.client import DECISION_ALLOW, DECISION_BLOCKED, PERMISSION_NAMES
from tests.conftest import World

ITEMS = [
    {"kind": "resource", "name": "file:///a.txt", "spec_json": json.dumps({"uri": "file:///a.txt", "name": "a"})},
    {
        "kind": "resource_template",
        "name": "file:///docs/{name}",
        "spec_json": json.dumps({"uriTemplate": "file:///docs/{name}", "name": "docs"}),
    },
    # Same name as the test upstream's `echo` tool, on purpose.
    {"kind": "prompt", "name": "echo", "spec_json": json.dumps({"name": "echo", "description": "a prompt"})},
]
KINDS = ["resource", "resource_template", "prompt"]


async def _authorize(world: World, who: str, kind: str, name: str, toolkit: str = "shared") -> int:
    async with world.service() as service:
        decision = await service.authorize_item(world.keys[who], "acme", toolkit, kind, name, "resources/read", "{}")
    return decision.decision


async def test_items_live_beside_tools_and_a_tools_sync_keeps_them(world: World) -> None:
    await world.operator.sync_tools("acme", "shared", ITEMS, prune=True, kinds=KINDS)
    tools_before = await world.operator.list_catalogue("acme", "shared")
    await world.operator.sync_tools("acme", "shared", [{"name": "echo"}], prune=True)  # tools only
    assert len(await world.operator.list_catalogue("acme", "shared", "*")) == 4  # echo tool + 3 items
    assert [t.name for t in tools_before] == sorted(t.name for t in tools_before)
    async with world.service() as service:
        tools = await service.list_tools(world.keys["acme:member"], "acme", "shared")
        prompts = await service.list_items(world.keys["acme:member"], "acme", "shared", "prompt")
    assert [t.name for t in tools.tools] == ["echo"]  # the prompt named echo is not a tool
    assert [(p.kind, json.loads(p.spec_json)["description"]) for p in prompts.items] == [("prompt", "a prompt")]
    # Blocking the prompt leaves the tool of the same name alone.
    await world.operator.set_tool_default("acme", "shared", "echo", "blocked", kind="prompt")
    async with world.service() as service:
        assert [t.name for t in (await service.list_tools(world.keys["acme:member"], "acme", "shared")).tools]
        assert not (await service.list_items(world.keys["acme:member"], "acme", "shared", "prompt")).items


async def test_unknown_and_blocked_items_get_the_same_answer(world: World) -> None:
    await world.operator.sync_tools("acme", "shared", ITEMS, prune=True, kinds=KINDS)
    assert await _authorize(world, "acme:member", "resource", "file:///docs/readme") == DECISION_ALLOW
    assert await _authorize(world, "acme:member", "resource", "file:///docs/a/../../etc") == DECISION_BLOCKED
    await world.operator.set_tool_default("acme", "shared", "file:///a.txt", "blocked", kind="resource")
    async with world.service() as service:
        blocked = await service.authorize_item(
            world.keys["acme:member"], "acme", "shared", "resource", "file:///a.txt", "resources/read", "{}"
        )
        unknown = await service.authorize_item(
            world.keys["acme:member"], "acme", "shared", "resource", "file:///b.txt", "resources/read", "{}"
        )
    assert blocked.decision == unknown.decision == DECISION_BLOCKED
    assert blocked.message.replace("a.txt", "?") == unknown.message.replace("b.txt", "?")
    assert not blocked.HasField("backend") and not unknown.HasField("backend")


async def test_owner_block_is_a_ceiling_for_consumer_orgs(world: World) -> None:
    await world.operator.sync_tools("acme", "shared", ITEMS, prune=True, kinds=KINDS)
    await world.operator.set_tool_default("acme", "shared", "file:///docs/{name}", "blocked", kind="resource_template")
    async with world.client("globex:admin") as globex:
        await globex.set_org_default("acme", "shared", "file:///docs/{name}", "always_allow", kind="resource_template")
    assert await _authorize(world, "globex:member", "resource", "file:///docs/x") == DECISION_BLOCKED
    assert await _authorize(world, "acme:member", "resource", "file:///docs/x") == DECISION_BLOCKED


async def test_items_need_a_service_identity_and_a_known_kind(world: World) -> None:
    await world.operator.sync_tools("acme", "shared", ITEMS, prune=True, kinds=KINDS)
    async with world.client("acme:member") as member:  # an org key is not a service identity
        with pytest.raises(errors.Unauthenticated):
            await member.list_items(world.keys["acme:member"], "acme", "shared", "prompt")
    async with world.service() as service:
        with pytest.raises(errors.InvalidArgument):
            await service.list_items(world.keys["acme:member"], "acme", "shared", "tool")
        with pytest.raises(errors.NotFound):
            await service.list_items(world.keys["globex:member"], "acme", "tools", "prompt")  # private
    rule = await world.operator.set_org_default("acme", "shared", "echo", "needs_approval", org="acme", kind="prompt")
    assert rule.kind == "prompt" and PERMISSION_NAMES[rule.permission] == "needs_approval"
