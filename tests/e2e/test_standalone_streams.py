"""Subscriptions and the client's standalone stream through the real gateway: a real stateful
SDK backend sends resource updates, log messages and list changes on its own GET stream; the
gateway relays each to the standalone streams (GET) of its tenant's clients, updates only to
the credentials that subscribed, and decides a subscription exactly as a read
(docs/adr/0025-standalone-streams-and-subscriptions.md)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mcp import types
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from mcp_front.app import build_app
from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.config import Settings
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client, two_fronts_sharing_redis
from tests.support import ts_client
from tests.support.notifying_backend import HIDDEN, WATCHED, NotifyingBackend
from tests.support.servers import free_port, serve_asgi
from tests.support.standalone_client import Stream, standalone

UPDATED = "notifications/resources/updated"


def _redis_up() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", 6379)) == 0


LOG = "notifications/message"
TOOLS_CHANGED = "notifications/tools/list_changed"


@dataclass
class Notifying:
    backend: NotifyingBackend
    url: str  # the gateway endpoint of acme/notifying


@pytest.fixture
async def notifying(world: World, front: str) -> AsyncIterator[Notifying]:
    backend = NotifyingBackend()
    async with serve_asgi(backend.app()) as base:
        await world.operator.upsert_toolkit(
            "acme", "notifying", name="notifying", visibility="private", backend_url=f"{base}/mcp"
        )
        await sync_catalogue(world.operator, "acme", "notifying", True, EgressPolicy(allow_private=True))
        await world.operator.set_tool_default("acme", "notifying", "announce", "always_allow")
        yield Notifying(backend, f"{front}/acme/notifying/mcp")


async def _announce_until(client: Any, stream: Stream, method: str, uri: str = WATCHED) -> list[dict[str, Any]]:
    """The backend announces until `stream` has seen `method` (its own GET to the backend opens
    asynchronously, and a backend drops what it sends before that stream exists)."""
    for _ in range(200):
        await client.call_tool("announce", {"uri": uri})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.1):
                return await stream.until(method)
    raise AssertionError(f"{method} never reached the standalone stream")


async def _subscribe(client: Any, uri: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)  # deprecated in 2026-07-28, still 2025's
        await client.subscribe_resource(uri)


async def _unsubscribe(client: Any, uri: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.unsubscribe_resource(uri)


async def test_an_update_reaches_only_the_subscriber_and_logs_and_list_changes_reach_everyone(
    notifying: Notifying, world: World
) -> None:
    member, admin = world.keys["acme:member"], world.keys["acme:admin"]
    async with (
        standalone(notifying.url, member) as mine,
        standalone(notifying.url, admin) as theirs,
        mcp_client(notifying.url, member) as client,
    ):
        assert mine.status == theirs.status == 200
        assert client.server_capabilities.resources is not None and client.server_capabilities.resources.subscribe
        await _subscribe(client, WATCHED)
        seen = await _announce_until(client, mine, UPDATED)
        assert {"jsonrpc": "2.0", "method": UPDATED, "params": {"uri": WATCHED}} in seen
        # The other credential of the same org hears the tenant's logs and list changes, never the update.
        others = await theirs.until(TOOLS_CHANGED)
        assert UPDATED not in [m["method"] for m in others]
        assert any(m["method"] == LOG and m["params"]["data"] == {"announced": WATCHED} for m in others)
    assert notifying.backend.seen.subscribed == [WATCHED]


async def test_after_unsubscribe_updates_stop(notifying: Notifying, world: World) -> None:
    member = world.keys["acme:member"]
    async with standalone(notifying.url, member) as stream, mcp_client(notifying.url, member) as client:
        await _subscribe(client, WATCHED)
        await _announce_until(client, stream, UPDATED)
        await _unsubscribe(client, WATCHED)
        before = len(stream.messages)
        changes = sum(m["method"] == TOOLS_CHANGED for m in stream.messages)
        await client.call_tool("announce", {"uri": WATCHED})
        after = await stream.until(TOOLS_CHANGED, count=changes + 1)
    assert UPDATED not in [m["method"] for m in after[before:]]
    assert notifying.backend.seen.unsubscribed == [WATCHED]


async def test_subscriptions_survive_a_backend_that_forgot_the_session(notifying: Notifying, world: World) -> None:
    """The gateway re-subscribes on the new backend session and follows its stream."""
    member = world.keys["acme:member"]
    async with standalone(notifying.url, member) as stream, mcp_client(notifying.url, member) as client:
        await _subscribe(client, WATCHED)
        await _announce_until(client, stream, UPDATED)
        await notifying.backend.forget_sessions()
        updates = sum(m["method"] == UPDATED for m in stream.messages)
        for _ in range(200):  # the first call after the loss finds a new session
            await client.call_tool("announce", {"uri": WATCHED})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await stream.until(UPDATED, count=updates + 1)
                    break
        else:
            raise AssertionError("no update after the backend forgot the session")
    assert notifying.backend.seen.subscribed == [WATCHED, WATCHED]  # the client's, then the gateway's


async def test_the_log_level_applies_to_the_standalone_stream(notifying: Notifying, world: World) -> None:
    member = world.keys["acme:member"]
    async with standalone(notifying.url, member) as stream, mcp_client(notifying.url, member) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.set_logging_level("error")  # the backend's announcements log at warning
        seen = await _announce_until(client, stream, TOOLS_CHANGED)
    assert LOG not in [m["method"] for m in seen]


async def test_a_subscription_to_a_blocked_or_unknown_resource_is_refused_like_a_read(
    notifying: Notifying, world: World
) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("member", "acme", "notifying", HIDDEN, "blocked", kind="resource")
    async with mcp_client(notifying.url, world.keys["acme:member"]) as client:
        refusals = []
        for uri in (HIDDEN, "test://nowhere"):
            with pytest.raises(MCPError) as read:
                await client.read_resource(uri)
            with pytest.raises(MCPError) as subscribed:
                await _subscribe(client, uri)
            assert (subscribed.value.error.code, subscribed.value.error.message) == (
                read.value.error.code,
                read.value.error.message,
            )
            refusals.append((subscribed.value.error.code, subscribed.value.error.message.replace(uri, "<uri>")))
        assert len(set(refusals)) == 1 and refusals[0][0] == -32002
    assert notifying.backend.seen.subscribed == []
    async with world.client("acme:admin") as admin:
        rows = (await admin.query_audit("acme", toolkit="notifying", page_size=200)).records
    assert ("resources/subscribe", HIDDEN, "blocked") in {(r.method, r.tool, r.status) for r in rows}


async def test_opening_a_stream_is_audited_and_a_2026_client_gets_405(notifying: Notifying, world: World) -> None:
    key = world.keys["acme:member"]
    async with standalone(notifying.url, key) as stream:
        assert stream.status == 200
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream", "MCP-Protocol-Version": "2026-07-28"}
    async with httpx.AsyncClient() as http:
        modern = await http.get(notifying.url, headers=headers)
        unauthenticated = await http.get(notifying.url, headers={"Accept": "text/event-stream"})
        deleted = await http.delete(notifying.url, headers={"Authorization": f"Bearer {key}"})
    assert modern.status_code == 405 and unauthenticated.status_code == 401 and deleted.status_code == 405
    async with world.client("acme:admin") as admin:
        rows = (await admin.query_audit("acme", toolkit="notifying", page_size=200)).records
    assert any(r.method == "GET" and r.status == "ok" for r in rows)
    assert any(r.method == "GET" and r.status == "invalid" and "2026-07-28" in r.error for r in rows)


async def test_the_typescript_sdk_client_gets_updates_on_its_own_stream(notifying: Notifying, world: World) -> None:
    """The TypeScript SDK (1.32) opens its standalone stream itself after initialize."""
    out = await ts_client.run(
        notifying.url,
        world.keys["acme:member"],
        "subscribe",
        {"uri": WATCHED, "name": "announce", "arguments": {"uri": WATCHED}},
    )
    assert out.get("updated") and set(out["updated"]) == {WATCHED}, out
    assert {"announced": WATCHED} in out["logs"]


async def test_the_python_sdk_client_gets_updates_and_logs_on_its_own_stream(
    notifying: Notifying, world: World
) -> None:
    """The Python SDK opens its standalone stream only when `initialize` issued a session id
    (docs/adr/0030): it now does, and an update and a log sent outside any call reach it."""
    updated: list[str] = []
    logs: list[Any] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    key = world.keys["acme:member"]
    async with mcp_client(notifying.url, key, message_handler=on_message, logging_callback=on_log) as client:
        await _subscribe(client, WATCHED)
        for _ in range(200):  # the client's GET and the front's GET to the backend open asynchronously
            await client.call_tool("announce", {"uri": WATCHED})
            if updated and logs:
                break
            await asyncio.sleep(0.05)
    assert set(updated) == {WATCHED} and {"announced": WATCHED} in logs
    async with world.client("acme:admin") as admin:
        rows = (await admin.query_audit("acme", toolkit="notifying", page_size=200)).records
    assert any(r.method == "GET" and r.status == "ok" for r in rows)  # the SDK's own GET stream


async def test_a_2026_client_listens_for_updates_and_list_changes(notifying: Notifying, world: World) -> None:
    """`subscriptions/listen` (2026-07-28): each URI decided like a read (the blocked one is left
    out of the acknowledgment), then the update and the list change the backend publishes to its
    listen streams reach the listen stream, stamped with its subscription id.

    `announce` (called by an initialize-era client of the same org) tells both eras, each its own
    way: its session's GET and its listen streams. The front follows this dual-era backend both
    ways and gives the 2026-07-28 client the listen's copy only (ADR 0053); the client's URI
    travels as the filter of the front's listen, never as `resources/subscribe`, and that
    listen ends with the client's stream."""
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("member", "acme", "notifying", HIDDEN, "blocked", kind="resource")
    key = world.keys["acme:member"]
    seen: list[Any] = []
    async with mcp_client(notifying.url, key, "2026-07-28") as client, mcp_client(notifying.url, key) as announcer:
        async with client.listen(tools_list_changed=True, resource_subscriptions=[WATCHED, HIDDEN]) as sub:
            assert sub.honored.resource_subscriptions == [WATCHED] and sub.honored.tools_list_changed
            assert not sub.honored.prompts_list_changed

            async def collect() -> None:
                async for event in sub:
                    seen.append(event)
                    if {type(e).__name__ for e in seen} >= {"ResourceUpdated", "ToolsListChanged"}:
                        return

            collector = asyncio.ensure_future(collect())
            for _ in range(200):  # the front's GET to the backend opens asynchronously
                if collector.done():
                    break
                await announcer.call_tool("announce", {"uri": WATCHED})
                await asyncio.sleep(0.05)
            await collector
    assert {getattr(e, "uri", None) for e in seen} <= {WATCHED, None}
    assert notifying.backend.seen.subscribed == []  # that era's way: the filter of the front's listen
    for _ in range(200):  # the stream's end ends the front's listen toward the backend
        if notifying.backend.bus.listening == 0:
            break
        await asyncio.sleep(0.05)
    assert notifying.backend.bus.listening == 0
    async with world.client("acme:admin") as admin:
        rows = (await admin.query_audit("acme", toolkit="notifying", page_size=200)).records
    audited = {(r.method, r.tool, r.status) for r in rows}
    assert ("resources/subscribe", HIDDEN, "blocked") in audited and ("resources/subscribe", WATCHED, "ok") in audited
    assert any(r.method == "subscriptions/listen" and r.status == "ok" for r in rows)


@pytest.mark.skipif(not _redis_up(), reason="Redis is not reachable on 127.0.0.1:6379")
async def test_with_redis_an_update_reaches_a_stream_held_by_another_replica(
    notifying: Notifying, world: World, settings: Settings
) -> None:
    """The subscription and the backend session are on one front, the client's stream and its
    unsubscribe on the other."""
    path, member = "/acme/notifying/mcp", world.keys["acme:member"]
    async with two_fronts_sharing_redis(settings, world) as (a, b):
        async with standalone(b + path, member) as stream, mcp_client(a + path, member) as client:
            await _subscribe(client, WATCHED)
            seen = await _announce_until(client, stream, UPDATED)
            async with mcp_client(b + path, member) as other:  # the unsubscribe lands on the other front
                await _unsubscribe(other, WATCHED)
            for _ in range(200):  # the other front forwards it, then the one holding the subscription
                if len(notifying.backend.seen.unsubscribed) == 2:
                    break
                await asyncio.sleep(0.05)
    assert {"jsonrpc": "2.0", "method": UPDATED, "params": {"uri": WATCHED}} in seen
    # The front that held the subscription dropped it and told the backend on its own session.
    assert notifying.backend.seen.unsubscribed == [WATCHED, WATCHED]


async def _held_answer_bytes(front: str) -> float:
    """The front's `monomcp_front_answer_bytes_held` gauge (docs/adr/0050)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{front}/metrics")).text
    held = [line.split(" ")[1] for line in text.splitlines() if line.startswith("monomcp_front_answer_bytes_held ")]
    return float(held[0])


async def _lean_call(url: str, key: str, tool: str, arguments: dict[str, Any]) -> None:
    """A tools/call without a handshake (the lean path): no SDK client, so no standalone stream of its own."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json=body, headers=headers)
    assert response.status_code == 200 and "result" in response.text, response.text[:200]


async def test_a_standalone_stream_holds_no_answer_budget(notifying: Notifying, world: World, front: str) -> None:
    """Red team (ADR 50): the backend listener a client's GET starts inherited that request's
    answer holding, so one large event on the backend's stream pinned its size of the process's
    budget for as long as the client stayed: a few such streams starved every tenant's large
    answers (and an event larger than the budget killed the listener)."""
    big = "x" * (3 * 1_048_576)

    @notifying.backend.server.tool(description="Sends a large log message outside this request.")
    async def shout(ctx: Context) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await ctx.request_context.session.send_log_message("warning", {"big": big}, logger="notifying")
        return "shouted"

    await sync_catalogue(world.operator, "acme", "notifying", True, EgressPolicy(allow_private=True))
    await world.operator.set_tool_default("acme", "notifying", "shout", "always_allow")
    member = world.keys["acme:member"]
    await _lean_call(notifying.url, member, "announce", {"uri": WATCHED})  # the tenant's backend session exists
    async with standalone(notifying.url, member) as stream:  # so this GET starts the listener itself
        logs = 0
        for _ in range(200):  # until the listener's own GET to the backend is open
            await _lean_call(notifying.url, member, "announce", {"uri": WATCHED})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    logs = sum(m["method"] == LOG for m in await stream.until(LOG))
                    break
        await _lean_call(notifying.url, member, "shout", {})
        seen = await stream.until(LOG, count=logs + 1)
        assert seen[-1]["params"]["data"] == {"big": big}
        assert await _held_answer_bytes(front) == 0  # no call in flight: nothing held


async def test_an_organization_holds_a_bounded_number_of_streams(
    world: World, settings: Settings, policy_addr: str, service_token: str
) -> None:
    """Minting keys or signing in again multiplies the per-credential bound on standing streams;
    the org's bound is what one tenant can hold on a front."""
    port = free_port()
    tuned = settings.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}", "service_token": service_token, "max_streams_per_org": 2}
    )
    async with serve_asgi(build_app(tuned, policy_addr), port) as front:
        url = f"{front}/acme/shared/mcp"
        async with (
            standalone(url, world.keys["acme:member"]) as first,
            standalone(url, world.keys["acme:admin"]) as second,
            standalone(url, world.keys["acme:admin2"]) as third,
            standalone(url, world.keys["globex:member"]) as other_org,
        ):
            assert [first.status, second.status, third.status] == [200, 200, 429]
            assert other_org.status == 200
        async with standalone(url, world.keys["acme:admin2"]) as later:
            assert later.status == 200  # the org's streams ended: room again
    rows = (await world.operator.query_audit("", status="rate_limited")).records
    assert [r.error for r in rows] == ["too many open streams for this organization"]
