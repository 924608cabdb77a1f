"""Approval policies from the policy file (ADR 0021): n-of-m distinct people, also when
they decide at the same moment on two policy services; who may approve; and window
grants that cover matching calls until they end."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from policy_service import errors
from policy_service.api.server import start
from policy_service.client import (
    DECISION_ALLOW,
    DECISION_DENIED,
    DECISION_PENDING_APPROVAL,
    PolicyClient,
)
from policy_service.config import Settings
from policy_service.storage.database import create_engine
from policy_service.storage.models import Approval, utcnow
from tests.conftest import World

APPROVED = 2  # types_pb2.APPROVAL_STATUS_APPROVED
PENDING = 1
TWO_APPROVERS = """\
org: acme
toolkits:
  acme/tools:
    transfer:
      approval:
        approvers: 2
        approver_roles: [admin]
        valid_for: 10m
"""
WINDOW = """\
org: acme
toolkits:
  acme/tools:
    transfer:
      approval:
        approvers: 1
        window:
          when: args.amount < 100
          for: 1h
"""


async def _people(world: World, *names: str) -> list[str]:
    """Admin keys owned by distinct people (so they count as distinct approvers)."""
    keys = []
    async with world.client("acme:admin") as admin:
        for name in names:
            email = f"{name}@acme.example"
            await admin.create_person("", email, name.title(), "admin", "a long enough password")
            keys.append((await admin.create_api_key("", f"{name}'s key", "admin", owner=email)).secret)
    return keys


async def _call(world: World, arguments: dict[str, object], who: str = "acme:member", key: str = "") -> tuple[int, str]:
    async with world.service() as client:
        response = await client.authorize_tool_call(
            key or world.keys[who], "acme", "tools", "transfer", json.dumps(arguments)
        )
    return response.decision, response.approval.id


async def _apply(world: World, text: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(text)


async def test_two_distinct_approvers_are_needed(world: World) -> None:
    await _apply(world, TWO_APPROVERS)
    ann, bob = await _people(world, "ann", "bob")
    decision, approval_id = await _call(world, {"amount": 5, "to": "x"})
    assert decision == DECISION_PENDING_APPROVAL
    async with PolicyClient(world.policy_addr, ann) as first:
        shown = await first.get_approval(approval_id)
        assert shown.required_approvals == 2 and "2 distinct approvers with role admin" in shown.scope
        assert "this exact call, once" in shown.scope
        after_one = await first.decide_approval(approval_id, approve=True)
        assert (after_one.status, after_one.approvals_so_far) == (PENDING, 1)
        with pytest.raises(errors.FailedPrecondition, match="already approved"):
            await first.decide_approval(approval_id, approve=True)  # the same person twice counts once
    assert (await _call(world, {"amount": 5, "to": "x"}))[0] == DECISION_PENDING_APPROVAL
    async with world.client("acme:admin") as unowned:
        with pytest.raises(errors.PermissionDenied) as refused:
            await unowned.decide_approval(approval_id, approve=True)
    assert refused.value.reason == "APPROVER_NOT_A_PERSON"  # an unowned key may be ann's own
    async with PolicyClient(world.policy_addr, bob) as second:
        done = await second.decide_approval(approval_id, approve=True)
    assert done.status == APPROVED and done.decided_by == "ann's key, bob's key"
    assert (await _call(world, {"amount": 5, "to": "x"}))[0] == DECISION_ALLOW  # exactly once
    assert (await _call(world, {"amount": 5, "to": "x"}))[0] == DECISION_DENIED  # already used


async def test_the_requesters_role_may_be_excluded(world: World) -> None:
    await _apply(
        world, TWO_APPROVERS.replace("approvers: 2", "approvers: 1\n        requester_role_may_approve: false")
    )
    ann, bob = await _people(world, "ann", "bob")
    _, approval_id = await _call(world, {"amount": 5, "to": "x"}, key=ann)
    async with PolicyClient(world.policy_addr, bob) as other_admin:
        with pytest.raises(errors.PermissionDenied, match="requester's role"):
            await other_admin.decide_approval(approval_id, approve=True)
    assert (await world.operator.decide_approval(approval_id, approve=True)).status == APPROVED


async def test_approver_roles_must_be_admin_roles(world: World) -> None:
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.InvalidArgument, match="line 7: role 'member' is not an admin role"):
            await admin.apply_policy(TWO_APPROVERS.replace("[admin]", "[member]"))


async def test_concurrent_approvals_on_two_policy_services(world: World, settings: Settings) -> None:
    await _apply(world, TWO_APPROVERS)
    ann, bob = await _people(world, "ann", "bob")
    replica = await start(settings, "127.0.0.1:0")
    try:
        for amount in range(1, 6):
            _, approval_id = await _call(world, {"amount": amount, "to": "x"})
            async with (
                PolicyClient(world.policy_addr, ann) as on_first,
                PolicyClient(f"127.0.0.1:{replica.port}", bob) as on_second,
            ):
                answers = await asyncio.gather(
                    on_first.decide_approval(approval_id, approve=True),
                    on_second.decide_approval(approval_id, approve=True),
                )
            # Exactly one of the two saw the second vote and granted it; the grant runs once.
            assert sorted(a.status for a in answers) == [PENDING, APPROVED]
            assert (await world.operator.get_approval(approval_id)).approvals_so_far == 2
            assert (await _call(world, {"amount": amount, "to": "x"}))[0] == DECISION_ALLOW
    finally:
        await replica.stop(0.5)


async def test_a_window_covers_matching_calls_until_it_ends(world: World, settings: Settings) -> None:
    await _apply(world, WINDOW)
    _, approval_id = await _call(world, {"amount": 5, "to": "x"})
    shown = await world.operator.get_approval(approval_id)
    assert "a window" in shown.scope and "`args.amount < 100`, for 1h" in shown.scope  # shown before deciding
    granted = await world.operator.decide_approval(approval_id, approve=True)
    assert granted.window_until.ToDatetime() > granted.decided_at.ToDatetime() and granted.approvals_so_far == 1
    for arguments in ({"amount": 5, "to": "x"}, {"amount": 5, "to": "x"}, {"amount": 99, "to": "y"}):
        assert await _call(world, arguments) == (DECISION_ALLOW, approval_id)
    decision, other = await _call(world, {"amount": 500, "to": "x"})  # outside the window's condition
    assert decision == DECISION_PENDING_APPROVAL and other != approval_id
    async with world.client("acme:admin") as admin:
        await admin.apply_policy("org: acme\n")  # no policy: callers of another principal still ask
    assert (await _call(world, {"amount": 5, "to": "x"}, who="acme:admin"))[0] == DECISION_PENDING_APPROVAL
    engine = create_engine(settings.database_url)
    try:
        async with engine.begin() as conn:  # the hour passes
            past = utcnow() - timedelta(seconds=1)
            await conn.execute(
                update(Approval).where(Approval.id == approval_id).values(window_until=past, expires_at=past)
            )
    finally:
        await engine.dispose()
    decision, renewed = await _call(world, {"amount": 5, "to": "x"})
    assert decision == DECISION_PENDING_APPROVAL and renewed != approval_id
    assert (await world.operator.get_approval(approval_id)).status == 4  # EXPIRED


async def test_a_condition_can_carry_its_own_approval_policy(world: World) -> None:
    await _apply(
        world,
        TWO_APPROVERS
        + "      conditions:\n"
        + "      - name: big\n        when: args.amount >= 1000\n        permission: needs_approval\n"
        + "        approval: {approvers: 1, window: {when: 'args.to == \"payroll\"', for: 30m}}\n",
    )
    _, big = await _call(world, {"amount": 5000, "to": "payroll"})
    _, small = await _call(world, {"amount": 5, "to": "x"})
    shown_big = await world.operator.get_approval(big)
    shown_small = await world.operator.get_approval(small)
    assert shown_big.required_approvals == 1 and "for 30m" in shown_big.scope  # the condition's policy
    assert shown_small.required_approvals == 2  # the tool's
