"""The operator belongs to no org, so nobody could decide its approval: a clear refusal
(on Postgres this used to be a foreign-key error), audited, nothing run or queued."""

from __future__ import annotations

from tests.conftest import OPERATOR, World, mcp_client


async def test_operator_calling_a_needs_approval_tool_is_refused_clearly(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/shared/mcp", OPERATOR) as client:
        result = await client.call_tool("transfer", {"amount": 2, "to": "hal"})
    assert result.is_error
    assert "operator token belongs to no org" in result.content[0].text  # type: ignore[union-attr]
    assert world.upstream.calls["transfer"] == 0
    records = (await world.operator.query_audit(tool="transfer")).records
    assert [(r.decision, r.status, r.actor_type) for r in records] == [("denied", "denied", "operator")]
    assert (await world.operator.list_approvals("acme")).approvals == []
