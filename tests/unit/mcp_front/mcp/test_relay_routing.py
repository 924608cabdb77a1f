"""Routed answers and cancellations: delivered only to the call of the credential whose
digest they carry; shared notifications reach local streams, updates only the subscribers';
anything malformed is dropped (no Redis needed: `receive` is the sink)."""

from __future__ import annotations

import json

from mcp_front.backends.upstream import UpstreamPool
from mcp_front.mcp.client_stream import ClientStream, Era
from mcp_front.mcp.relay import RelayHub, owner_digest
from mcp_front.mcp.relay_routing import SharedRelays
from mcp_front.mcp.standalone import StreamHub

SCOPE = "acme/docs|acme"


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


async def test_a_shared_notification_reaches_local_streams_and_updates_only_subscribers() -> None:
    hub = RelayHub()
    streams = StreamHub(hub, UpstreamPool())
    shared = SharedRelays(hub, "redis://127.0.0.1:1/0", streams)
    mine, theirs = ClientStream("key-a", "acme/docs", SCOPE), ClientStream("key-b", "acme/docs", SCOPE)
    streams._streams[SCOPE] = {mine, theirs}
    update = {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "file:///x"}}
    routed = {"kind": "notify", "scope": SCOPE, "subscribers": [owner_digest("key-a")], "message": update}
    assert shared.receive(json.dumps(routed))
    assert not shared.receive(json.dumps({**routed, "from": shared._replica}))  # its own message
    assert mine.queue.qsize() == 1 and theirs.queue.qsize() == 0


def test_a_shared_unsubscribe_drops_only_that_credentials_subscription() -> None:
    hub = RelayHub()
    streams = StreamHub(hub, UpstreamPool())
    shared = SharedRelays(hub, "redis://127.0.0.1:1/0", streams)
    streams.subscribe("key-a", SCOPE, "file:///x")
    streams.subscribe("key-b", SCOPE, "file:///x")
    routed = {"kind": "unsubscribe", "scope": SCOPE, "owner": owner_digest("key-a"), "message": {"uri": "file:///x"}}
    assert shared.receive(json.dumps(routed))
    assert not streams.unsubscribe("key-c", SCOPE, "file:///x")  # key-b still wants it
    assert streams.unsubscribe("key-b", SCOPE, "file:///x")  # and key-a no longer did


def test_a_shared_notification_keeps_its_era() -> None:
    """What one era's stream of a dual-era backend carried reaches only that era's streams on
    another replica (ADR 0053); without `era` (an older replica's message) it reaches both; an
    era this replica does not know is dropped."""
    hub = RelayHub()
    streams = StreamHub(hub, UpstreamPool())
    shared = SharedRelays(hub, "redis://127.0.0.1:1/0", streams)
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    old = ClientStream("key-a", "acme/docs", SCOPE)
    new = ClientStream("key-a", "acme/docs", SCOPE, frozenset({changed["method"]}), Era.MODERN)
    streams._streams[SCOPE] = {old, new}
    routed = {"kind": "notify", "scope": SCOPE, "subscribers": [], "message": changed}
    assert shared.receive(json.dumps({**routed, "era": "2026-07-28"}))
    assert (old.queue.qsize(), new.queue.qsize()) == (0, 1)
    assert shared.receive(json.dumps({**routed, "era": "initialize"}))
    assert (old.queue.qsize(), new.queue.qsize()) == (1, 1)
    assert shared.receive(json.dumps(routed))
    assert (old.queue.qsize(), new.queue.qsize()) == (2, 2)
    assert not shared.receive(json.dumps({**routed, "era": "2030-01-01"}))
    assert (old.queue.qsize(), new.queue.qsize()) == (2, 2)


def test_a_shared_notification_with_a_malformed_era_is_dropped_not_raised() -> None:
    """Red team (review 2): an `era` that is not a string (a list) raised TypeError out of
    `receive`, which ended the replica's Redis listener for good (answers, cancellations and
    notifications from every other replica lost)."""
    hub = RelayHub()
    streams = StreamHub(hub, UpstreamPool())
    shared = SharedRelays(hub, "redis://127.0.0.1:1/0", streams)
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    routed = {"kind": "notify", "scope": SCOPE, "subscribers": [], "message": changed}
    assert not shared.receive(json.dumps({**routed, "era": ["initialize"]}))
    assert not shared.receive(json.dumps({**routed, "era": {"x": 1}}))
