"""Routed answers and cancellations: delivered only to the call of the credential whose
digest they carry; anything malformed is dropped (no Redis needed: `receive` is the sink)."""

from __future__ import annotations

import json

from mcp_front.mcp.relay import RelayHub, owner_digest
from mcp_front.mcp.relay_routing import SharedRelays


async def test_a_routed_answer_reaches_only_its_owners_call() -> None:
    hub = RelayHub()
    shared = SharedRelays(hub, "redis://127.0.0.1:1/0")
    request_id, answer = hub.expect_answer("key-a")
    message = {"jsonrpc": "2.0", "id": request_id, "result": {"ok": True}}
    assert not shared.receive(json.dumps({"kind": "answer", "owner": owner_digest("key-b"), "message": message}))
    assert not shared.receive(b"not json") and not shared.receive(json.dumps({"kind": "answer"}))
    assert shared.receive(json.dumps({"kind": "answer", "owner": owner_digest("key-a"), "message": message}))
    assert (await answer)["result"] == {"ok": True}


def test_a_routed_cancellation_cancels_only_its_owners_call() -> None:
    hub = RelayHub()
    shared = SharedRelays(hub, "redis://127.0.0.1:1/0")
    cancelled: list[int] = []
    hub.register_call("key-a", 7, lambda: cancelled.append(7))
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
    assert not shared.receive(json.dumps({"kind": "cancel", "owner": owner_digest("key-b"), "message": note}))
    assert shared.receive(json.dumps({"kind": "cancel", "owner": owner_digest("key-a"), "message": note}))
    assert cancelled == [7]
