"""Permissions as code over the real gRPC service: export round-trips, diff, atomic apply,
line-numbered errors, versions, the audit row, and conditions deciding calls."""

from __future__ import annotations

import json

import pytest

from policy_service import errors
from policy_service.client import DECISION_ALLOW, DECISION_BLOCKED, DECISION_PENDING_APPROVAL, PERMISSION_NAMES
from tests.conftest import World

POLICY = """\
org: acme
toolkits:
  acme/tools:
    echo:
      default: needs_approval
      roles:
        admin: always_allow
    transfer:
      default: needs_approval
      conditions:
        - name: small
          when: args.amount < 100 && args.to.startsWith("acct-")
          permission: always_allow
        - when: principal.role == "member" && args.amount > 10000
          permission: blocked
"""


async def _tool_permission(world: World, who: str, tool: str) -> str | None:
    async with world.service() as client:
        response = await client.list_tools(world.keys[who], "acme", "tools")
    return next((PERMISSION_NAMES[t.permission] for t in response.tools if t.name == tool), None)


async def test_apply_then_export_round_trips(world: World) -> None:
    async with world.client("acme:admin") as admin:
        assert (await admin.export_policy()).live.version == 0
        preview = await admin.apply_policy(POLICY, dry_run=True)
        assert not preview.applied
        assert {(c.tool, c.field, c.action) for c in preview.changes} == {
            ("echo", "default", "add"),
            ("echo", "role:admin", "add"),
            ("transfer", "default", "add"),
            ("transfer", "conditions", "add"),
        }
        assert await _tool_permission(world, "acme:member", "echo") == "always_allow"  # a dry run changes nothing
        applied = await admin.apply_policy(POLICY)
        assert applied.applied and applied.live.version == 1
        exported = await admin.export_policy()
        assert exported.live.version == 1 and exported.live.applied_by
        again = await admin.apply_policy(exported.yaml, dry_run=True)
        assert list(again.changes) == []  # export is exactly what is live
        assert (await admin.apply_policy(exported.yaml)).live.version == 1  # nothing to change: no new version
        assert (await admin.export_policy()).yaml == exported.yaml
    assert await _tool_permission(world, "acme:member", "echo") == "needs_approval"
    assert await _tool_permission(world, "acme:admin", "echo") == "always_allow"


async def test_removing_rules_from_the_file_clears_them(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("member", "acme", "tools", "add", "blocked")
        changes = (await admin.apply_policy("org: acme\n")).changes
    assert [(c.tool, c.field, c.action) for c in changes] == [("add", "role:member", "remove")]
    assert await _tool_permission(world, "acme:member", "add") == "always_allow"


async def test_unknown_names_are_errors_with_line_numbers_and_nothing_changes(world: World) -> None:
    bad = POLICY.replace("    transfer:", "    transferr:").replace("admin: always_allow", "admins: always_allow")
    bad += "  acme/nope:\n    echo:\n      default: blocked\n"
    bad = bad.replace('args.amount < 100 && args.to.startsWith("acct-")', "args.to.startsWith(5)")
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.InvalidArgument) as caught:
            await admin.apply_policy(bad)
        assert (await admin.export_policy()).live.version == 0
    message = caught.value.message
    assert "line 7: unknown role 'admins'" in message
    assert "line 8: unknown tool 'transferr' in acme/tools" in message
    assert "line 16: unknown toolkit 'acme/nope'" in message
    assert await _tool_permission(world, "acme:member", "echo") == "always_allow"


async def test_conditions_are_type_checked_at_apply_time(world: World) -> None:
    text = POLICY.replace('args.amount < 100 && args.to.startsWith("acct-")', "args.to.startsWith(5)")
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.InvalidArgument) as caught:
            await admin.apply_policy(text.replace('principal.role == "member" && args.amount > 10000', "args.amount"))
    assert "line 12: condition 'args.to.startsWith(5)'" in caught.value.message
    assert "no matching overload for 'startsWith'" in caught.value.message
    assert "line 14: condition" in caught.value.message and "must be a bool" in caught.value.message


async def test_schema_errors_name_the_line(world: World) -> None:
    text = "org: acme\ntoolkits:\n  acme/tools:\n    echo:\n      default: sometimes\n      colour: red\n"
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.InvalidArgument) as caught:
            await admin.apply_policy(text)
    assert "line 5: toolkits.acme/tools.echo.default: 'sometimes' is not one of" in caught.value.message
    assert "line 4: toolkits.acme/tools.echo: unknown field 'colour'" in caught.value.message


async def test_members_and_other_orgs_cannot_apply(world: World) -> None:
    async with world.client("acme:member") as member:
        with pytest.raises(errors.PermissionDenied):
            await member.apply_policy(POLICY)
    async with world.client("globex:admin") as globex:
        with pytest.raises(errors.NotFound):
            await globex.apply_policy(POLICY, org="acme")
        with pytest.raises(errors.InvalidArgument, match="for org 'acme', not 'globex'"):
            await globex.apply_policy(POLICY)


async def test_an_apply_is_one_audited_admin_action_with_its_changes(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(POLICY, dry_run=True)
        await admin.apply_policy(POLICY)
        records = [r for r in (await admin.query_audit(page_size=500)).records if r.method == "admin/ApplyPolicy"]
    assert len(records) == 1  # dry runs change nothing and are not actions
    request = json.loads(records[0].request_json)
    assert request["version"] == 1 and records[0].status == "ok"
    assert "add acme/tools echo default:  -> needs_approval" in request["changes"]


async def _decide(world: World, who: str, tool: str, arguments: dict[str, object]) -> tuple[int, str]:
    async with world.service() as client:
        response = await client.authorize_tool_call(world.keys[who], "acme", "tools", tool, json.dumps(arguments))
    return response.decision, response.call_id


async def test_conditions_decide_and_the_audit_row_names_the_rule(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(POLICY)
    assert (await _decide(world, "acme:member", "transfer", {"amount": 5, "to": "acct-1"}))[0] == DECISION_ALLOW
    assert (await _decide(world, "acme:member", "transfer", {"amount": 500, "to": "acct-1"}))[0] == (
        DECISION_PENDING_APPROVAL
    )
    decision, call_id = await _decide(world, "acme:member", "transfer", {"amount": 50_000, "to": "x"})
    assert decision == DECISION_BLOCKED
    # A missing argument is an evaluation error: blocked, with the reason, never allowed.
    decision, failed_id = await _decide(world, "acme:member", "transfer", {"amount": 5})
    assert decision == DECISION_BLOCKED
    async with world.client("acme:admin") as admin:
        records = {r.call_id: r for r in (await admin.query_audit(tool="transfer")).records}
    assert records[call_id].rule == "acme/tools transfer conditions[1]"
    assert records[failed_id].rule == "acme/tools transfer small"
    assert "failed closed" in records[failed_id].error and "to" in records[failed_id].error


async def test_a_condition_can_open_part_of_a_blocked_tool_and_it_is_listed(world: World) -> None:
    lifted = (
        "org: acme\ntoolkits:\n  acme/tools:\n    wipe:\n      conditions:\n"
        '      - when: args.target == "tmp"\n        permission: always_allow\n'
    )
    assert await _tool_permission(world, "acme:member", "wipe") is None  # the owner default blocks it
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(lifted)
    assert await _tool_permission(world, "acme:member", "wipe") == "always_allow"  # callable, so listed
    assert (await _decide(world, "acme:member", "wipe", {"target": "tmp"}))[0] == DECISION_ALLOW
    assert (await _decide(world, "acme:member", "wipe", {"target": "prod"}))[0] == DECISION_BLOCKED
    on_shared = lifted.replace("org: acme", "org: globex").replace("acme/tools", "acme/shared")
    async with world.client("globex:admin") as globex:  # a consumer cannot open the owner's block
        await globex.apply_policy(on_shared)
    async with world.service() as client:
        listing = await client.list_tools(world.keys["globex:member"], "acme", "shared")
        call = await client.authorize_tool_call(
            world.keys["globex:member"], "acme", "shared", "wipe", '{"target": "tmp"}'
        )
    assert "wipe" not in {t.name for t in listing.tools} and call.decision == DECISION_BLOCKED
