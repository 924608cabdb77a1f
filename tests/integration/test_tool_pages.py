"""ListTools pages through a large catalogue with opaque tokens; a token the service did
not issue is refused; `names` answers only the tools asked for."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from policy_service import errors
from policy_service.api.server import start
from policy_service.client import PolicyClient
from policy_service.config import Settings
from tests.conftest import World

TOOLS = 1_234


async def test_pages_cover_a_large_catalogue_once_each(world: World) -> None:
    names = [f"tool_{i:05d}" for i in range(TOOLS)]
    await world.operator.upsert_toolkit("acme", "big", visibility="private", backend_url=world.upstream_url)
    await world.operator.sync_tools(
        "acme",
        "big",
        [{"name": n, "default_permission": "always_allow"} for n in names]
        + [{"name": "zz_blocked", "default_permission": "blocked"}],
    )
    seen: list[str] = []
    pages, token = 0, ""
    async with world.service() as client:
        while True:
            page = await client.list_tools(world.keys["acme:member"], "acme", "big", page_size=500, page_token=token)
            seen += [t.name for t in page.tools]
            pages, token = pages + 1, page.next_page_token
            if not token:
                break
        assert seen == names and pages == 3  # sorted, complete, no duplicates; blocked never listed
        chosen = await client.list_tools(world.keys["acme:member"], "acme", "big", names=["tool_01000", "zz_blocked"])
        assert [t.name for t in chosen.tools] == ["tool_01000"]
        decision = await client.authorize_tool_call(world.keys["acme:member"], "acme", "big", "tool_01233", "{}")
        assert decision.call_id


@pytest.mark.parametrize("token", ["not-ours", "eyJhZnRlciI6IDF9", "%%%"])
async def test_a_token_the_service_did_not_issue_is_invalid(world: World, token: str) -> None:
    async with world.service() as client:
        with pytest.raises(errors.InvalidArgument):
            await client.list_tools(world.keys["acme:member"], "acme", "tools", page_size=10, page_token=token)


async def test_a_page_skips_blocked_runs_longer_than_a_page(world: World) -> None:
    """A page is read from the catalogue a run at a time: runs of blocked tools longer than a
    page are skipped, and a tool a role override opens in the middle of one is listed."""
    allowed = [f"a_{i:02d}" for i in range(5)] + [f"c_{i:02d}" for i in range(7)]
    blocked = [f"b_{i:02d}" for i in range(12)]
    await world.operator.upsert_toolkit("acme", "gappy", visibility="private", backend_url=world.upstream_url)
    await world.operator.sync_tools(
        "acme",
        "gappy",
        [{"name": n, "default_permission": "always_allow"} for n in allowed]
        + [{"name": n, "default_permission": "blocked"} for n in blocked],
    )
    await world.operator.set_role_override("member", "acme", "gappy", "b_07", "always_allow", "acme")
    pages: list[list[str]] = []
    token = ""
    async with world.service() as client:
        while True:
            page = await client.list_tools(world.keys["acme:member"], "acme", "gappy", page_size=5, page_token=token)
            pages.append([t.name for t in page.tools])
            token = page.next_page_token
            if not token:
                break
    assert pages == [allowed[:5], ["b_07", *allowed[5:9]], allowed[9:]]


async def test_pages_and_named_tools_never_read_the_whole_catalogue(world: World, settings: Settings) -> None:
    """A page or a `names` lookup reads its own tools (by name range or by name), so its cost
    does not grow with the catalogue; only a full listing (page size 0) reads every tool."""
    await world.operator.upsert_toolkit("acme", "wide", visibility="private", backend_url=world.upstream_url)
    await world.operator.sync_tools(
        "acme", "wide", [{"name": f"t_{i:04d}", "default_permission": "always_allow"} for i in range(300)]
    )
    replica = await start(settings.model_copy(update={"cache_ttl_seconds": 30.0}), "127.0.0.1:0")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(replica.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with PolicyClient(f"127.0.0.1:{replica.port}", service_token=world.service_token) as client:
            member = world.keys["acme:member"]
            named = await client.list_tools(member, "acme", "wide", names=["t_0123", "missing"])
            page = await client.list_tools(member, "acme", "wide", page_size=10)
    finally:
        event.remove(replica.engine.sync_engine, "before_cursor_execute", record)
        await replica.stop(0.5)
    assert [t.name for t in named.tools] == ["t_0123"]
    assert [t.name for t in page.tools] == [f"t_{i:04d}" for i in range(10)] and page.next_page_token
    tool_reads = [s for s in statements if "FROM tools" in s and "tools.spec_json" in s]
    assert tool_reads and all("tools.name =" in s or "tools.name >" in s for s in tool_reads)


async def test_a_full_listing_of_a_large_catalogue_follows_permission_changes(world: World, settings: Settings) -> None:
    """A full listing's messages are kept per cached view (ADR 0024); a permission change
    makes a new view, so the next listing shows it, never the kept one."""
    names = [f"tool_{i:05d}" for i in range(1_200)]
    await world.operator.upsert_toolkit("acme", "large", visibility="private", backend_url=world.upstream_url)
    await world.operator.sync_tools("acme", "large", [{"name": n, "default_permission": "always_allow"} for n in names])
    replica = await start(settings.model_copy(update={"cache_ttl_seconds": 30.0}), "127.0.0.1:0")
    try:
        async with PolicyClient(f"127.0.0.1:{replica.port}", service_token=world.service_token) as client:
            member = world.keys["acme:member"]
            first = await client.list_tools(member, "acme", "large")
            again = await client.list_tools(member, "acme", "large")  # from the kept messages
            assert [t.name for t in first.tools] == [t.name for t in again.tools] == names
            assert again.principal.id and again.toolkit_name == first.toolkit_name
            await world.operator.set_role_override("member", "acme", "large", "tool_00007", "blocked", "acme")
            await asyncio.sleep(1.0)
            after = await client.list_tools(member, "acme", "large")
    finally:
        await replica.stop(0.5)
    assert [t.name for t in after.tools] == [n for n in names if n != "tool_00007"]
