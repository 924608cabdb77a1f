"""A 2026-07-28-only backend's own events reach the gateway's clients of both eras
(docs/adr/0048-listening-to-2026-backends.md). Such a backend has no GET stream: what it
sends outside any request travels only on `subscriptions/listen` streams, so the front
follows it with one listen per tenant session, filtered by what the tenant's clients
subscribed to. Real SDK backend (2026-07-28 only) over loopback, real front, real SDK
clients of both eras; events are published on the backend's bus, outside any request."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from mcp import types
from mcp.server.subscriptions import ResourceUpdated, ServerEvent, ToolsListChanged
from mcp.shared.exceptions import MCPDeprecationWarning

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.config import Settings
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client, two_fronts_sharing_redis
from tests.support import listening_backend
from tests.support.listening_backend import HIDDEN, OTHER, WATCHED, CountingBus, ListenRecorder
from tests.support.servers import serve_asgi
from tests.support.standalone_client import Stream, standalone
from tests.support.unruly_backend import UnrulyBackend

UPDATED = "notifications/resources/updated"
TOOLS_CHANGED = "notifications/tools/list_changed"
MODERN = "2026-07-28"


def _redis_up() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", 6379)) == 0


@dataclass
class Listening:
    url: str  # the gateway endpoint of acme/listening
    bus: CountingBus
    backend: ListenRecorder


@pytest.fixture
async def listening(world: World, front: str) -> AsyncIterator[Listening]:
    async with listening_backend.serve() as (url, bus, backend):
        await world.operator.upsert_toolkit(
            "acme", "listening", name="listening", visibility="private", backend_url=url
        )
        await sync_catalogue(world.operator, "acme", "listening", True, EgressPolicy(allow_private=True))
        await world.operator.set_tool_default("acme", "listening", "noop", "always_allow")
        yield Listening(f"{front}/acme/listening/mcp", bus, backend)


async def _publish_until(bus: CountingBus, events: list[ServerEvent], done: Callable[[], bool]) -> None:
    """Publishes `events` outside any request until `done()` (the client's stream and the
    front's listen toward the backend open asynchronously; an event published before a
    listen stream exists reaches nobody, as the SDK's bus drops it)."""
    for _ in range(300):
        for event in events:
            await bus.publish(event)
        await asyncio.sleep(0.05)
        if done():
            return
    raise AssertionError("the published events never arrived")


async def _eventually(check: Callable[[], bool]) -> None:
    for _ in range(300):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def _subscribing(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def run(*args: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # the initialize era's way, still its own
            return await call(*args)

    return run


async def test_an_initialize_era_subscriber_hears_a_2026_backend(listening: Listening, world: World) -> None:
    """`resources/subscribe` becomes the URI in the front's listen filter; the update reaches the
    subscriber's own GET stream (the Python SDK opens it), the list change every stream of the
    tenant, the other credential's stream never the update; unsubscribe takes the URI out."""
    updated: list[str] = []
    changed: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
        elif isinstance(message, types.ToolListChangedNotification):
            changed.append("tools")

    member, admin = world.keys["acme:member"], world.keys["acme:admin"]
    async with (
        standalone(listening.url, admin) as theirs,
        mcp_client(listening.url, member, message_handler=on_message) as client,
    ):
        await _subscribing(client.subscribe_resource)(WATCHED)
        events: list[ServerEvent] = [ResourceUpdated(WATCHED), ResourceUpdated(OTHER), ToolsListChanged()]
        await _publish_until(listening.bus, events, lambda: bool(updated and changed))
        others = await theirs.until(TOOLS_CHANGED)
        await _subscribing(client.unsubscribe_resource)(WATCHED)
        await _eventually(lambda: WATCHED not in listening.backend.uris()[-1])
    assert set(updated) == {WATCHED}
    assert UPDATED not in [m["method"] for m in others]
    assert all(not (m.get("params") or {}).get("_meta") for m in others)  # the front's hop id stays with it
    assert [WATCHED] in listening.backend.uris()
    assert "resources/subscribe" not in listening.backend.methods  # that era has no such request


async def test_a_2026_client_listens_to_a_2026_backend(listening: Listening, world: World) -> None:
    """A listen stream through the gateway: the blocked URI is left out of the ack and never
    reaches the backend's filter; the update and the list change arrive stamped with the
    client's own subscription; when the stream ends the front stops listening to the backend."""
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("member", "acme", "listening", HIDDEN, "blocked", kind="resource")
    seen: list[Any] = []
    async with (
        mcp_client(listening.url, world.keys["acme:member"], MODERN) as client,
        client.listen(tools_list_changed=True, resource_subscriptions=[WATCHED, HIDDEN]) as sub,
    ):
        assert sub.honored.resource_subscriptions == [WATCHED] and sub.honored.tools_list_changed

        async def collect() -> None:
            async for event in sub:
                seen.append(event)

        collector = asyncio.ensure_future(collect())
        events: list[ServerEvent] = [ResourceUpdated(OTHER), ResourceUpdated(WATCHED), ToolsListChanged()]
        try:
            wanted = {"ResourceUpdated", "ToolsListChanged"}
            await _publish_until(listening.bus, events, lambda: {type(e).__name__ for e in seen} >= wanted)
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
    assert {getattr(e, "uri", None) for e in seen} == {WATCHED, None}
    assert all(HIDDEN not in uris for uris in listening.backend.uris())
    await _eventually(lambda: listening.bus.listening == 0)


async def test_a_listen_for_list_changes_alone_follows_a_backend_only_2026_clients_used(
    listening: Listening, world: World
) -> None:
    """A 2026-07-28 client's call reaches the backend without a session (`server/discover`
    said it serves that era); a listen that subscribes to no URI still makes the front open
    the tenant's session, learn the backend serves only 2026-07-28, and listen to it."""
    seen: list[Any] = []
    async with mcp_client(listening.url, world.keys["acme:member"], MODERN) as client:
        assert not (await client.call_tool("noop", {})).is_error
        async with client.listen(tools_list_changed=True) as sub:

            async def collect() -> None:
                async for event in sub:
                    seen.append(event)

            collector = asyncio.ensure_future(collect())
            try:
                await _publish_until(listening.bus, [ToolsListChanged()], lambda: bool(seen))
            finally:
                collector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collector
    assert {type(e).__name__ for e in seen} == {"ToolsListChanged"}
    assert listening.backend.filters and not listening.backend.uris()[-1]


@contextlib.asynccontextmanager
async def _unruly_tenant(world: World, front: str, unruly: UnrulyBackend) -> AsyncIterator[tuple[Stream, Any]]:
    """acme/unruly on `unruly`, with acme:member's standalone stream open and one call made
    (which opens the tenant's session, so the front starts listening)."""
    member = world.keys["acme:member"]
    async with serve_asgi(unruly) as base:
        await world.operator.upsert_toolkit("acme", "unruly", name="unruly", visibility="private", backend_url=base)
        await sync_catalogue(world.operator, "acme", "unruly", True, EgressPolicy(allow_private=True))
        await world.operator.set_tool_default("acme", "unruly", "noop", "always_allow")
        url = f"{front}/acme/unruly/mcp"
        async with standalone(url, member) as stream, mcp_client(url, member) as client:
            assert not (await client.call_tool("noop", {})).is_error
            yield stream, client


async def test_a_misbehaving_2026_backend_hurts_neither_its_tenant_nor_another(
    listening: Listening, world: World, front: str
) -> None:
    """On the unruly backend's listen: a line that is not JSON and a value nested past the
    parser's depth are skipped (the list change after them arrives), an event over 15 MiB ends
    that stream and the front listens again; while its next stream hangs, the front serves, and
    another tenant's backend still reaches its subscriber."""
    unruly = UnrulyBackend()
    member = world.keys["acme:member"]
    async with _unruly_tenant(world, front, unruly) as (stream, client):
        # Bounded far above the ~1 s they take, so a broken front fails instead of hanging.
        await asyncio.wait_for(stream.until(TOOLS_CHANGED), 120)
        await asyncio.wait_for(unruly.silent.wait(), 120)  # the front listened again after the oversized event
        updated: list[str] = []

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                updated.append(str(message.params.uri))

        async with mcp_client(listening.url, member, message_handler=on_message) as other:
            await _subscribing(other.subscribe_resource)(WATCHED)
            await _publish_until(listening.bus, [ResourceUpdated(WATCHED)], lambda: bool(updated))
        assert not (await client.call_tool("noop", {})).is_error
    assert unruly.listens >= 2


@pytest.mark.skipif(not _redis_up(), reason="Redis is not reachable on 127.0.0.1:6379")
async def test_with_redis_an_update_reaches_a_stream_held_by_another_replica(
    listening: Listening, world: World, settings: Settings
) -> None:
    """The subscription, so the listen toward the backend, is on one front; the client's
    stream is on the other, and hears the update through Redis (ADR 25's sharing)."""
    path, member = "/acme/listening/mcp", world.keys["acme:member"]
    async with two_fronts_sharing_redis(settings, world) as (a, b):
        async with standalone(b + path, member) as stream, mcp_client(a + path, member) as client:
            await _subscribing(client.subscribe_resource)(WATCHED)

            def updates() -> list[dict[str, Any]]:
                return [m for m in stream.messages if m["method"] == UPDATED]

            await _publish_until(
                listening.bus, [ResourceUpdated(OTHER), ResourceUpdated(WATCHED)], lambda: bool(updates())
            )
    assert {m["params"]["uri"] for m in updates()} == {WATCHED}


async def test_a_flood_of_identical_list_changes_does_not_cost_the_tenant_its_streams(world: World, front: str) -> None:
    """5,000 identical `tools/list_changed` in one write: level triggers ("this changed, list
    again"), so the front relays each once per read instead of filling the client's queue
    (256) until its stream is closed; the event after the flood still arrives."""
    async with _unruly_tenant(world, front, UnrulyBackend(flood=True)) as (stream, _client):
        # Bounded far above the ~1 s it takes, so a closed stream fails instead of hanging.
        seen = await asyncio.wait_for(stream.until("notifications/prompts/list_changed"), 120)
    assert 1 <= sum(m["method"] == TOOLS_CHANGED for m in seen) < 256


async def test_an_event_whose_method_or_uri_is_an_array_does_not_end_the_listen(world: World, front: str) -> None:
    """A backend's event with `"method": [...]` or `"uri": [...]` (unhashable) is skipped like
    any other odd event: the list change after it still arrives. Before, folding level
    triggers raised TypeError, which killed the tenant's listener until its session changed."""
    async with _unruly_tenant(world, front, UnrulyBackend(unhashable=True)) as (stream, _client):
        # Bounded far above the ~1 s it takes, so a dead listener fails instead of hanging.
        await asyncio.wait_for(stream.until(TOOLS_CHANGED), 60)
