"""A dual-era backend (every `mcp` 2.x SDK server) reaches each client the way it would
directly (docs/adr/0053-per-era-routing-of-dual-era-backends.md): what it publishes to its
`subscriptions/listen` streams (the SDK's `ctx.notify_*`) reaches the gateway's 2026-07-28
clients, what it sends on an initialize-era session's GET stream reaches initialize-era
clients, and neither reaches the other era, so nothing arrives twice. Real SDK backend over
loopback (stateful streamable HTTP, both eras at one URL), real fronts, real SDK clients.

The negative checks need no clock: the hub hands one backend event to every stream it is
for in one step, so once one client got an event, an event put after it on another client's
stream arrives after anything the first one put there (each stream is one ordered queue)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from mcp.client import Client

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.config import Settings
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client, two_fronts_sharing_redis
from tests.support import dual_era_backend
from tests.support.dual_era_backend import FilterRecorder
from tests.support.listening_backend import HIDDEN, OTHER, WATCHED, CountingBus

MODERN = "2026-07-28"
TOOLS_CHANGED = "notifications/tools/list_changed"
RESOURCES_CHANGED = "notifications/resources/list_changed"
TOOLS = ("announce_to_listeners", "announce_to_sessions", "touch")


def _redis_up() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", 6379)) == 0


@dataclass
class DualEra:
    path: str  # the toolkit's path on a front
    url: str  # the gateway endpoint of acme/dualera on the `front` fixture
    bus: CountingBus
    backend: FilterRecorder


@pytest.fixture
async def dual(world: World, front: str) -> AsyncIterator[DualEra]:
    async with dual_era_backend.serve() as (url, bus, backend):
        await world.operator.upsert_toolkit("acme", "dualera", name="dualera", visibility="private", backend_url=url)
        await sync_catalogue(world.operator, "acme", "dualera", True, EgressPolicy(allow_private=True))
        for tool in TOOLS:
            await world.operator.set_tool_default("acme", "dualera", tool, "always_allow")
        yield DualEra("/acme/dualera/mcp", f"{front}/acme/dualera/mcp", bus, backend)


class Heard:
    """The methods an initialize-era SDK client got outside its calls (its GET stream)."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def __call__(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            self.methods.append(method)

    def count(self, method: str) -> int:
        return self.methods.count(method)


@contextlib.asynccontextmanager
async def _collected(sub: Any) -> AsyncIterator[list[str]]:
    """The events of a 2026-07-28 client's listen stream, as `notifications/...` methods."""
    names = {"ToolsListChanged": TOOLS_CHANGED, "ResourcesListChanged": RESOURCES_CHANGED}
    seen: list[str] = []

    async def collect() -> None:
        async for event in sub:
            seen.append(names.get(type(event).__name__, f"updated {getattr(event, 'uri', '?')}"))

    collector = asyncio.ensure_future(collect())
    try:
        yield seen
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector


async def _call_until(client: Client, tool: str, done: Callable[[], bool], **arguments: Any) -> None:
    """Calls `tool` until `done()`: streams and the front's own streams toward the backend
    open asynchronously, and the backend drops what it sends while nobody listens."""
    for _ in range(150):
        assert not (await client.call_tool(tool, arguments)).is_error
        for _ in range(4):
            await asyncio.sleep(0.05)
            if done():
                return
    raise AssertionError(f"what {tool} sent never arrived")


async def _each_era_hears_its_own(caller: Client, old: Client, sub: Any, heard: Heard) -> None:
    """A 2026-07-28 client's listen (`sub`) hears the backend's listen goods, `heard` (an initialize-era
    client's GET) the backend's session events; neither hears the other's."""
    async with _collected(sub) as modern:
        await _call_until(caller, "announce_to_listeners", lambda: RESOURCES_CHANGED in modern)
        await _call_until(old, "announce_to_sessions", lambda: heard.count(TOOLS_CHANGED) > 0)
        # Fence: a listen event after the session event reached `heard`.
        seen = modern.count(RESOURCES_CHANGED)
        await _call_until(caller, "announce_to_listeners", lambda: modern.count(RESOURCES_CHANGED) > seen)
        assert TOOLS_CHANGED not in modern  # a session's event: never on a 2026-07-28 client's listen
        # Fence: a session event after the last listen event reached `modern`.
        seen = heard.count(TOOLS_CHANGED)
        await _call_until(old, "announce_to_sessions", lambda: heard.count(TOOLS_CHANGED) > seen)
    assert RESOURCES_CHANGED not in heard.methods  # listen goods: never on an initialize-era stream


async def test_each_era_hears_a_dual_era_backend_the_way_it_would_directly(dual: DualEra, world: World) -> None:
    """The 2026-07-28 client's listen gets the backend's `ctx.notify_resources_changed()`; the
    initialize-era client's GET gets the backend's `ctx.session.send_tool_list_changed()`;
    neither gets the other's. Before, the front followed the handshake session's GET only:
    the listen event never reached anyone, and the GET event reached the listen too."""
    member, admin = world.keys["acme:member"], world.keys["acme:admin"]
    heard = Heard()
    async with (
        mcp_client(dual.url, member, message_handler=heard) as old,
        mcp_client(dual.url, admin, MODERN) as new,
        new.listen(tools_list_changed=True, resources_list_changed=True) as sub,
    ):
        await _each_era_hears_its_own(new, old, sub, heard)


async def test_a_2026_client_subscribes_on_a_dual_era_backend_through_the_front_listen(
    dual: DualEra, world: World
) -> None:
    """A 2026-07-28 client's URI becomes the filter of the front's listen toward the backend
    (that era's way; the SDK's MCPServer has no `resources/subscribe`, so the handshake
    session refused it before and the URI was left out of the ack); the blocked URI is never
    sent; the update arrives for the URI asked for only; the listen ends with the client's."""
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("member", "acme", "dualera", HIDDEN, "blocked", kind="resource")
    async with (
        mcp_client(dual.url, world.keys["acme:member"], MODERN) as client,
        client.listen(resource_subscriptions=[WATCHED, HIDDEN]) as sub,
    ):
        assert sub.honored.resource_subscriptions == [WATCHED]
        async with _collected(sub) as seen:

            async def touch_both() -> None:
                for uri in (OTHER, WATCHED):
                    assert not (await client.call_tool("touch", {"uri": uri})).is_error

            for _ in range(150):
                await touch_both()
                await asyncio.sleep(0.2)
                if seen:
                    break
    assert set(seen) == {f"updated {WATCHED}"}
    assert [WATCHED] in dual.backend.uris()
    assert all(HIDDEN not in uris for uris in dual.backend.uris())
    assert "resources/subscribe" not in dual.backend.methods
    for _ in range(300):  # the front's listen toward the backend ends with the client's
        if dual.bus.listening == 0:
            break
        await asyncio.sleep(0.05)
    assert dual.bus.listening == 0


async def test_a_2026_listen_on_a_backend_only_initialize_era_clients_used_asks_its_eras(
    dual: DualEra, world: World
) -> None:
    """The tenant holds a handshake session and the front never asked whether the backend serves
    2026-07-28 (only initialize-era clients called it): a 2026-07-28 client's listen, which calls
    nothing, makes the front ask once and listen, so the backend's listen goods (published here
    during an initialize-era call: the SDK's bus is the server's) reach it."""
    member = world.keys["acme:member"]
    async with mcp_client(dual.url, member) as old:
        assert not (await old.call_tool("announce_to_sessions", {})).is_error  # opens the tenant's session
        async with (
            mcp_client(dual.url, member, MODERN) as new,
            new.listen(resources_list_changed=True) as sub,
            _collected(sub) as modern,
        ):
            await _call_until(old, "announce_to_listeners", lambda: RESOURCES_CHANGED in modern)
    assert "server/discover" in dual.backend.methods


@pytest.mark.skipif(not _redis_up(), reason="Redis is not reachable on 127.0.0.1:6379")
async def test_with_redis_the_era_travels_with_what_another_replica_heard(
    dual: DualEra, world: World, settings: Settings
) -> None:
    """Front A follows the backend (its own client's GET makes it listen; its 2026-07-28
    client's call taught it the backend serves that era); front B follows nothing and holds
    both eras' streams. What A hears reaches B through Redis with its era: listen goods to
    B's 2026-07-28 listen only, the session's event to B's initialize-era GET only."""
    member, admin = world.keys["acme:member"], world.keys["acme:admin"]
    heard, theirs = Heard(), Heard()
    async with two_fronts_sharing_redis(settings, world) as (a, b):
        async with (
            mcp_client(a + dual.path, admin, message_handler=theirs) as old_on_a,
            mcp_client(a + dual.path, admin, MODERN) as new_on_a,
            mcp_client(b + dual.path, member, message_handler=heard),
            mcp_client(b + dual.path, member, MODERN) as new_on_b,
            new_on_b.listen(tools_list_changed=True, resources_list_changed=True) as sub,
        ):
            # B's clients only listen: B's replica holds no backend session to follow.
            await _each_era_hears_its_own(new_on_a, old_on_a, sub, heard)
