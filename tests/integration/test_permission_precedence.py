"""Each precedence level end to end: owner default, org default, role override."""

from __future__ import annotations

from policy_service import errors
from policy_service.client import PERMISSION_NAMES
from tests.conftest import World


async def _perm(world: World, who: str, toolkit: str, tool: str, org: str = "acme") -> str | None:
    async with world.service() as client:
        response = await client.list_tools(world.keys[who], org, toolkit)
    return next((PERMISSION_NAMES[t.permission] for t in response.tools if t.name == tool), None)


async def test_three_levels_of_precedence(world: World) -> None:
    assert await _perm(world, "acme:member", "tools", "echo") == "always_allow"  # owner default
    async with world.client("acme:admin") as admin:
        await admin.set_org_default("acme", "tools", "echo", "needs_approval")
        assert await _perm(world, "acme:member", "tools", "echo") == "needs_approval"  # org default
        await admin.set_role_override("member", "acme", "tools", "echo", "blocked")
        assert await _perm(world, "acme:member", "tools", "echo") is None  # override: blocked → hidden
        assert await _perm(world, "acme:admin", "tools", "echo") == "needs_approval"  # other role: org default
        assert await admin.clear_role_override("member", "acme", "tools", "echo")
        assert await _perm(world, "acme:member", "tools", "echo") == "needs_approval"
        assert await admin.clear_org_default("acme", "tools", "echo")
    assert await _perm(world, "acme:member", "tools", "echo") == "always_allow"


async def test_org_defaults_apply_to_the_callers_org_only(world: World) -> None:
    async with world.client("globex:admin") as globex:
        await globex.set_org_default("acme", "shared", "echo", "blocked")
        rules = await globex.list_permission_rules()
    assert [(r.toolkit_slug, r.tool) for r in rules] == [("shared", "echo")]
    assert await _perm(world, "globex:member", "shared", "echo") is None
    assert await _perm(world, "acme:member", "shared", "echo") == "always_allow"


async def test_a_role_override_can_unblock_for_one_role(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("admin", "acme", "tools", "wipe", "needs_approval")
    assert await _perm(world, "acme:admin", "tools", "wipe") == "needs_approval"
    assert await _perm(world, "acme:member", "tools", "wipe") is None


async def test_members_cannot_administer(world: World) -> None:
    async with world.client("acme:member") as member:
        for call in (
            member.set_org_default("acme", "tools", "echo", "blocked"),
            member.create_api_key("acme", "sneaky", "admin"),
            member.list_approvals(),
        ):
            try:
                await call
            except errors.PermissionDenied:
                continue
            raise AssertionError("a member administered the org")


async def test_admins_cannot_touch_other_orgs(world: World) -> None:
    async with world.client("globex:admin") as globex:
        for call in (
            globex.create_api_key("acme", "x", "admin"),
            globex.set_role_override("member", "acme", "tools", "echo", "blocked", org="acme"),
            globex.set_org_default("acme", "tools", "echo", "blocked"),  # private toolkit of another org
        ):
            try:
                await call
            except errors.NotFound:
                continue
            raise AssertionError("cross-org admin call succeeded")


async def test_only_the_operator_creates_orgs(world: World) -> None:
    async with world.client("acme:admin") as admin:
        try:
            await admin.create_org("newco")
        except errors.PermissionDenied:
            pass
        else:
            raise AssertionError("org admin created an org")
    await world.operator.create_org("newco", "New Co")
    assert "newco" in {o.slug for o in await world.operator.list_orgs()}


async def test_invalid_admin_input_is_rejected(world: World) -> None:
    for call in (
        world.operator.create_org("Bad Slug!"),
        world.operator.upsert_toolkit("acme", "x", backend_url="ftp://nope"),
        world.operator.upsert_toolkit("acme", "y", visibility="secret"),
        world.operator.set_tool_default("acme", "tools", "echo", "sometimes"),
    ):
        try:
            await call
        except errors.InvalidArgument:
            continue
        raise AssertionError("bad input accepted")
    try:
        await world.operator.create_org("acme")
    except errors.AlreadyExists:
        pass
    else:
        raise AssertionError("duplicate org accepted")


async def test_a_blocked_call_says_which_level_blocked_it(world: World) -> None:
    """It said "blocked for your role" whoever had blocked the tool."""

    async def said(tool: str) -> str:
        async with world.service() as client:
            answer = await client.authorize_tool_call(world.keys["acme:member"], "acme", "tools", tool, "{}")
        return answer.message

    assert await said("wipe") == "Tool 'wipe' is blocked by the toolkit's owner."
    async with world.client("acme:admin") as admin:
        await admin.set_org_default("acme", "tools", "echo", "blocked")
        assert await said("echo") == "Tool 'echo' is blocked by your org's default."
        await admin.set_org_default("acme", "tools", "echo", "always_allow")
        await admin.set_role_override("member", "acme", "tools", "echo", "blocked")
        assert await said("echo") == "Tool 'echo' is blocked for your role."
