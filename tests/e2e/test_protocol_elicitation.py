"""2026-07-28: declining or cancelling the approval page's URL elicitation is honoured at
once: the client gets the pending result naming its approval, and is not asked again."""

from __future__ import annotations

from typing import Any, Literal

import mcp_types as types
import pytest

from mcp_front.mcp.results import APPROVAL_META
from tests.conftest import World, mcp_client

ARGS = {"amount": 9, "to": "grace"}


@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_declining_the_approval_page_returns_the_pending_result_at_once(
    world: World, front: str, action: Literal["decline", "cancel"]
) -> None:
    asked: list[str] = []

    async def dismiss(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.url)  # type: ignore[union-attr]
        return types.ElicitResult(action=action)

    async with mcp_client(
        f"{front}/acme/tools/mcp", world.keys["acme:member"], "2026-07-28", elicitation_callback=dismiss
    ) as client:
        result = await client.call_tool("transfer", ARGS)
    assert len(asked) == 1  # asked once, not again every 10 s
    approval = (result.meta or {})[APPROVAL_META]
    assert result.is_error and approval["status"] == "pending" and asked[0].endswith(approval["id"])
    assert approval["id"] in result.content[0].text  # type: ignore[union-attr]
    async with world.client("acme:admin") as admin:
        (pending,) = (await admin.list_approvals(status="pending")).approvals
    assert pending.id == approval["id"] and world.upstream.calls["transfer"] == 0
