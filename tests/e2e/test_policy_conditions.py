"""Conditions through a real MCP client and the front: what runs upstream is what the
policy file's conditions allow, and a condition that cannot be evaluated runs nothing."""

from __future__ import annotations

from tests.conftest import World, mcp_client

POLICY = """\
org: acme
toolkits:
  acme/tools:
    transfer:
      default: needs_approval
      conditions:
      - name: small
        when: args.amount < 100
        permission: always_allow
      - name: blocked-payee
        when: args.to == "mallory"
        permission: blocked
"""


async def test_conditions_decide_what_runs(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(POLICY)
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        ran = await client.call_tool("transfer", {"amount": 5, "to": "bob"})
        assert not ran.is_error and world.upstream.calls["transfer"] == 1
        pending = await client.call_tool("transfer", {"amount": 500, "to": "bob"})
        assert "monomcp/approval" in (pending.meta or {})
        refused = await client.call_tool("transfer", {"amount": 500, "to": "mallory"})
        assert refused.is_error and "blocked-payee" in refused.content[0].text  # type: ignore[union-attr]
    assert world.upstream.calls["transfer"] == 1
