"""The stream hub's delivery rules: updates only to subscribers, logs by level, list changes
to the whole tenant scope, nothing across scopes."""

from __future__ import annotations

from typing import Any

from mcp_front.backends.upstream import UpstreamPool
from mcp_front.mcp import standalone
from mcp_front.mcp.client_stream import ClientStream, Era
from mcp_front.mcp.relay import RelayHub
from mcp_front.mcp.standalone import MAX_URIS_PER_SUBSCRIBER, StreamHub

SCOPE = "acme/docs|acme"
LISTS = "notifications/tools/list_changed"
UPDATED = "notifications/resources/updated"


def _drained(stream: ClientStream) -> list[dict[str, Any]]:
    out = []
    while not stream.queue.empty():
        out.append(stream.queue.get_nowait())
    return out


def _hub_with(*streams: ClientStream) -> tuple[StreamHub, RelayHub]:
    relays = RelayHub()
    hub = StreamHub(relays, UpstreamPool())
    for stream in streams:
        hub._streams.setdefault(stream.scope, set()).add(stream)
    return hub, relays


async def test_an_update_reaches_only_the_streams_of_subscribers_in_that_scope() -> None:
    a, b = ClientStream("key-a", "acme/docs", SCOPE), ClientStream("key-b", "acme/docs", SCOPE)
    elsewhere = ClientStream("key-a", "globex/docs", "globex/docs|globex")
    hub, _ = _hub_with(a, b, elsewhere)
    hub.subscribe("key-a", SCOPE, "file:///x")
    await hub.deliver(SCOPE, {"method": "notifications/resources/updated", "params": {"uri": "file:///x"}})
    await hub.deliver(SCOPE, {"method": "notifications/resources/updated", "params": {"uri": "file:///y"}})
    assert [m["params"]["uri"] for m in _drained(a)] == ["file:///x"]
    assert _drained(b) == [] and _drained(elsewhere) == []


async def test_logs_follow_each_credentials_level_and_list_changes_reach_everyone() -> None:
    a, b = ClientStream("key-a", "acme/docs", SCOPE), ClientStream("key-b", "acme/docs", SCOPE)
    hub, relays = _hub_with(a, b)
    relays.set_level("key-b", "acme/docs", "error")
    await hub.deliver(SCOPE, {"method": "notifications/message", "params": {"level": "info", "data": "hi"}})
    await hub.deliver(SCOPE, {"method": "notifications/prompts/list_changed"})
    await hub.deliver(SCOPE, {"method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}})
    assert [m["method"] for m in _drained(a)] == ["notifications/message", "notifications/prompts/list_changed"]
    assert [m["method"] for m in _drained(b)] == ["notifications/prompts/list_changed"]


def test_unsubscribe_tells_the_backend_only_when_nobody_else_in_the_scope_needs_the_uri() -> None:
    hub, _ = _hub_with()
    hub.subscribe("key-a", SCOPE, "file:///x")
    hub.subscribe("key-b", SCOPE, "file:///x")
    hub.subscribe("key-c", "globex/docs|globex", "file:///x")
    assert not hub.unsubscribe("key-a", SCOPE, "file:///x")
    assert hub.unsubscribe("key-b", SCOPE, "file:///x")


def test_subscriptions_are_bounded_per_credential() -> None:
    hub, _ = _hub_with()
    for i in range(MAX_URIS_PER_SUBSCRIBER):
        hub.subscribe("key-a", SCOPE, f"file:///{i}")
    assert not hub.may_subscribe("key-a") and hub.may_subscribe("key-b")


async def test_past_the_subscriber_bound_the_oldest_is_forgotten_with_its_share_of_the_credential_bound(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(standalone, "_MAX_SUBSCRIBERS", 2)
    a = ClientStream("key-a", "acme/docs", SCOPE)
    hub, _ = _hub_with(a)
    for i in range(MAX_URIS_PER_SUBSCRIBER):
        hub.subscribe("key-a", SCOPE, f"file:///{i}")
    hub.subscribe("key-b", SCOPE, "file:///0")
    hub.subscribe("key-a", SCOPE, "file:///0")  # key-a's entry is the newest again
    hub.subscribe("key-c", SCOPE, "file:///0")  # so key-b's goes
    assert not hub.may_subscribe("key-a") and hub.unsubscribe("key-a", SCOPE, "file:///0") is False
    hub.subscribe("key-d", "globex/docs|globex", "file:///0")  # key-a's (oldest now) goes
    assert hub.may_subscribe("key-a")
    await hub.deliver(SCOPE, {"method": "notifications/resources/updated", "params": {"uri": "file:///1"}})
    assert _drained(a) == []


async def test_an_update_whose_uri_is_not_a_string_reaches_nobody_and_breaks_nothing() -> None:
    a = ClientStream("key-a", "acme/docs", SCOPE)
    hub, _ = _hub_with(a)
    hub.subscribe("key-a", SCOPE, "file:///x")
    await hub.deliver(SCOPE, {"method": "notifications/resources/updated", "params": {"uri": ["file:///x"]}})
    await hub.deliver(SCOPE, {"method": "notifications/resources/updated", "params": {"uri": "file:///x"}})
    assert [m["params"]["uri"] for m in _drained(a)] == ["file:///x"]


async def test_an_event_for_one_era_reaches_only_that_eras_streams_and_none_twice() -> None:
    """A dual-era backend's GET event is the initialize era's, its listen event 2026-07-28's
    (ADR 0053); any other backend's event (no era) reaches both."""
    old = ClientStream("key-a", "acme/docs", SCOPE)
    new = ClientStream("key-a", "acme/docs", SCOPE, frozenset({LISTS}), Era.MODERN)
    hub, _ = _hub_with(old, new)
    await hub.deliver(SCOPE, {"method": LISTS}, Era.INITIALIZE)
    await hub.deliver(SCOPE, {"method": LISTS, "params": {"from": "listen"}}, Era.MODERN)
    await hub.deliver(SCOPE, {"method": LISTS, "params": {"from": "any"}})
    assert [m["params"] for m in _drained(old)] == [{}, {"from": "any"}]
    assert [m["params"] for m in _drained(new)] == [{"from": "listen"}, {"from": "any"}]


def test_each_era_asks_for_the_uris_subscribed_in_it() -> None:
    """A dual-era backend's listen carries the 2026-07-28 subscriptions, its handshake session
    the initialize era's; any other backend's one wire carries both."""
    hub, _ = _hub_with()
    hub.subscribe("key-a", SCOPE, "file:///old")
    hub.subscribe("key-b", SCOPE, "file:///new", Era.MODERN)
    hub.subscribe("key-c", SCOPE, "file:///old", Era.MODERN)
    assert hub._wanted(SCOPE, Era.MODERN) == ["file:///new", "file:///old"]
    assert hub._wanted(SCOPE, Era.INITIALIZE) == ["file:///old"]
    assert hub._wanted(SCOPE) == ["file:///new", "file:///old"]
    assert hub.unsubscribe("key-b", SCOPE, "file:///new")
    assert hub._wanted(SCOPE, Era.MODERN) == ["file:///old"]


async def test_a_stream_that_does_not_read_is_dropped_by_the_bytes_it_holds_not_only_their_count() -> None:
    """Red team (review 2): the queue was bounded at 256 messages of any size, so a client that
    stopped reading let its tenant's backend make the front hold 256 events of up to 15 MiB
    each (3.75 GB) before its stream was dropped; the answer budget (ADR 50) does not see them."""
    idle = ClientStream("key-a", "acme/docs", SCOPE)
    hub, _ = _hub_with(idle)
    big = {"method": "notifications/message", "params": {"level": "info", "data": "x" * 3_000_000}}
    for _ in range(20):  # 60 MB: far fewer than 256 events
        await hub.deliver(SCOPE, big)
    assert idle.overflowed.is_set() and idle.queue.qsize() < 20


async def test_a_stream_that_reads_keeps_up_with_large_events() -> None:
    reading = ClientStream("key-b", "acme/docs", SCOPE)
    hub, _ = _hub_with(reading)
    big = {"method": "notifications/message", "params": {"level": "info", "data": "x" * 3_000_000}}
    for _ in range(20):
        await hub.deliver(SCOPE, big)
        assert (await reading.get())["params"] == big["params"]
    assert not reading.overflowed.is_set()


async def test_an_update_on_one_eras_wire_reaches_only_that_eras_subscribers() -> None:
    """Red team (review 2): on a dual-era backend the handshake session's GET carries the
    updates of initialize-era subscriptions; a credential that subscribed to the URI only on
    its 2026-07-28 listen heard them on its initialize-era GET stream too (a subscription of
    one era leaking into the other's streams)."""
    a_get = ClientStream("key-a", "acme/docs", SCOPE)
    b_get = ClientStream("key-b", "acme/docs", SCOPE)
    b_listen = ClientStream("key-b", "acme/docs", SCOPE, frozenset({UPDATED}), Era.MODERN)
    hub, _ = _hub_with(a_get, b_get, b_listen)
    hub.subscribe("key-a", SCOPE, "file:///x", Era.INITIALIZE)
    hub.subscribe("key-b", SCOPE, "file:///x", Era.MODERN)
    updated = {"method": UPDATED, "params": {"uri": "file:///x"}}
    await hub.deliver(SCOPE, updated, Era.INITIALIZE)  # heard on the handshake session's GET
    await hub.deliver(SCOPE, updated, Era.MODERN)  # heard on the front's listen
    assert [m["params"]["uri"] for m in _drained(a_get)] == ["file:///x"]
    assert _drained(b_get) == []
    assert [m["params"]["uri"] for m in _drained(b_listen)] == ["file:///x"]
