"""Results the gateway writes itself (approval pending, denied) stay valid against the tool's
output schema: the TypeScript SDK client, which validates them, shows the approval instead
of throwing -32602; the facts travel in text and `_meta`."""

from __future__ import annotations

from tests.conftest import World
from tests.support import ts_client

ARGS = {"amount": 7, "to": "erin"}


async def _decide_only_pending(world: World, approve: bool) -> None:
    async with world.client("acme:admin") as admin:
        (pending,) = (await admin.list_approvals(status="pending")).approvals
        await admin.decide_approval(pending.id, approve=approve, reason="" if approve else "not this week")


async def test_the_typescript_client_sees_pending_and_denied_results(world: World, front: str) -> None:
    url, key = f"{front}/acme/tools/mcp", world.keys["acme:member"]
    pending = await ts_client.run(url, key, "call", {"name": "transfer", "arguments": ARGS})
    assert "error" not in pending, pending
    result = pending["result"]
    approval = result["_meta"]["monomcp/approval"]
    assert result["isError"] and "structuredContent" not in result
    assert approval["status"] == "pending" and approval["id"] in result["content"][0]["text"]
    assert result["_meta"]["monomcp/executed"] is False

    await _decide_only_pending(world, approve=False)
    denied = await ts_client.run(url, key, "call", {"name": "transfer", "arguments": ARGS})
    assert "error" not in denied, denied
    assert denied["result"]["isError"] and "not this week" in denied["result"]["content"][0]["text"]
    assert denied["result"]["_meta"]["monomcp/approval"]["status"] == "denied"
    assert world.upstream.calls["transfer"] == 0
