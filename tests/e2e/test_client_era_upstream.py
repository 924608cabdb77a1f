"""The client's era reaches a backend that serves it (ADR 0032): a 2026-07-28 client's
requests travel to a dual-era `mcp` 2.x backend in 2026-07-28 (no handshake, no session),
an initialize-era client keeps the handshake (sampling and elicitation relayed), a
handshake-only backend still serves a 2026-07-28 client, and a backend that stops serving
2026-07-28 is spoken to over the handshake again. Real SDK backends over loopback HTTP,
real SDK clients through the real front."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import mcp_types as types
import pytest
from mcp_types import PromptReference
from starlette.types import ASGIApp, Scope, Send

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client
from tests.support import input_backend
from tests.support.era_backends import EraRecorder, OldBackend, PostFilter
from tests.support.item_backend import ItemBackend
from tests.support.relay_backend import TOOLKIT, relay_toolkit
from tests.support.servers import serve_asgi
from tests.support.upstream import Upstream

MODERN = "2026-07-28"
ALLOW_LOOPBACK = EgressPolicy(allow_private=True)


async def _register(world: World, slug: str, url: str, visibility: str = "private") -> None:
    await world.operator.upsert_toolkit("acme", slug, name=slug, visibility=visibility, backend_url=url)
    await sync_catalogue(world.operator, "acme", slug, True, ALLOW_LOOPBACK)


@pytest.fixture(params=[False, True], ids=["stateless", "stateful"])
async def dual_era(request: pytest.FixtureRequest, world: World) -> AsyncIterator[EraRecorder]:
    """acme's public `dual` toolkit: the test upstream as it is (both eras), recorded."""
    recorder = EraRecorder(Upstream(stateful=request.param).app())
    async with serve_asgi(recorder) as base:
        await _register(world, "dual", f"{base}/mcp", "public")
        recorder.seen.clear()  # the catalogue sync's own traffic is not the point
        yield recorder


async def test_a_2026_client_reaches_a_dual_era_backend_in_its_era(
    world: World, front: str, dual_era: EraRecorder
) -> None:
    async with mcp_client(f"{front}/acme/dual/mcp", world.keys["acme:member"], MODERN) as client:
        for text in ("one", "two"):
            result = await client.call_tool("echo", {"text": text})
            assert not result.is_error and result.content[0].text == text  # type: ignore[union-attr]
    assert dual_era.versions("tools/call") == [MODERN, MODERN]
    assert dual_era.methods() == ["server/discover", "tools/call", "tools/call"]  # asked once, no handshake
    assert all(session is None for _, _, session in dual_era.seen)


async def test_each_era_gets_its_own_wire_in_one_tenant(world: World, front: str, dual_era: EraRecorder) -> None:
    """Both eras of clients of one org on one backend: neither changes what the other speaks."""
    url, key = f"{front}/acme/dual/mcp", world.keys["acme:member"]
    async with mcp_client(url, key) as old, mcp_client(url, key, MODERN) as new:
        assert (await old.call_tool("echo", {"text": "a"})).content[0].text == "a"  # type: ignore[union-attr]
        assert (await new.call_tool("echo", {"text": "b"})).content[0].text == "b"  # type: ignore[union-attr]
        assert (await old.call_tool("echo", {"text": "c"})).content[0].text == "c"  # type: ignore[union-attr]
    assert dual_era.versions("tools/call") == ["2025-11-25", MODERN, "2025-11-25"]
    assert dual_era.methods().count("initialize") == 1


async def test_the_era_is_learned_per_tenant(world: World, front: str, dual_era: EraRecorder) -> None:
    """Upstream keys stay tenant-scoped: each org's calls ask the backend for themselves."""
    for who in ("acme:member", "globex:member", "acme:member"):
        async with mcp_client(f"{front}/acme/dual/mcp", world.keys[who], MODERN) as client:
            assert not (await client.call_tool("echo", {"text": who})).is_error
    assert dual_era.methods().count("server/discover") == 2
    assert dual_era.versions("tools/call") == [MODERN] * 3


async def test_resources_prompts_and_completion_travel_in_the_clients_era(world: World, front: str) -> None:
    backend = ItemBackend()
    recorder = EraRecorder(backend.app())
    async with serve_asgi(recorder) as base:
        await _register(world, "items", f"{base}/mcp")
        recorder.seen.clear()
        async with mcp_client(f"{front}/acme/items/mcp", world.keys["acme:member"], MODERN) as client:
            text = (await client.read_resource("test://static-text")).contents[0]
            got = await client.get_prompt("test_prompt_with_arguments", {"arg1": "hello", "arg2": "world"})
            done = await client.complete(
                PromptReference(name="test_prompt_with_arguments"), {"name": "arg1", "value": "test"}
            )
    assert text.text == "This is the content of the static text resource."  # type: ignore[union-attr]
    assert got.messages[0].content.text == "Prompt with arguments: arg1='hello', arg2='world'"  # type: ignore[union-attr]
    assert done.completion.values == ["test", "testing", "tested"]
    for method in ("resources/read", "prompts/get", "completion/complete"):
        assert recorder.versions(method) == [MODERN], method
    assert "initialize" not in recorder.methods()


async def test_an_initialize_era_client_keeps_the_handshake_with_sampling_and_elicitation(
    world: World, front: str
) -> None:
    recorders: list[EraRecorder] = []

    def record(app: Any) -> EraRecorder:
        recorders.append(EraRecorder(app))
        return recorders[-1]

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = types.TextContent(type="text", text="forty-two")
        return types.CreateMessageResult(role="assistant", content=content, model="test-model")

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"username": "carol", "email": "c@example.com"})

    async with relay_toolkit(world.operator, wrap=record):
        recorders[0].seen.clear()
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(
            url, world.keys["acme:member"], sampling_callback=sample, elicitation_callback=elicit
        ) as client:
            sampled = await client.call_tool("test_sampling", {"prompt": "meaning of life?"})
            elicited = await client.call_tool("test_elicitation", {"message": "who are you?"})
    assert sampled.content[0].text == "LLM response: forty-two"  # type: ignore[union-attr]
    assert "carol" in elicited.content[0].text  # type: ignore[union-attr]
    seen = recorders[0]
    assert seen.methods()[0] == "initialize" and "server/discover" not in seen.methods()
    assert seen.versions("tools/call") == ["2025-11-25", "2025-11-25"]
    assert all(session for method, _, session in seen.seen if method == "tools/call")


async def test_a_handshake_only_backend_serves_a_2026_client(world: World, front: str) -> None:
    upstream = Upstream()
    backend = OldBackend(upstream.app())
    async with serve_asgi(backend) as base:
        await _register(world, "old", f"{base}/mcp")
        backend.versions_seen.clear()
        async with mcp_client(f"{front}/acme/old/mcp", world.keys["acme:member"], MODERN) as client:
            for text in ("one", "two"):
                assert (await client.call_tool("echo", {"text": text})).content[0].text == text  # type: ignore[union-attr]
    assert upstream.calls["echo"] == 2
    # One probe in 2026-07-28 (refused), then the handshake's version for every call.
    assert backend.versions_seen == [MODERN, None, "2025-06-18", "2025-06-18", "2025-06-18"]


async def test_a_backend_that_stops_serving_2026_gets_the_handshake(
    world: World, front: str, dual_era: EraRecorder
) -> None:
    """Redeployed without 2026-07-28 (it answers -32022): the call still runs, over the handshake."""
    async with mcp_client(f"{front}/acme/dual/mcp", world.keys["acme:member"], MODERN) as client:
        assert not (await client.call_tool("echo", {"text": "before"})).is_error
        dual_era.serve_modern = False
        after = await client.call_tool("echo", {"text": "after"})
    assert not after.is_error and after.content[0].text == "after"  # type: ignore[union-attr]
    assert dual_era.versions("tools/call") == [MODERN, MODERN, "2025-11-25"]
    assert dual_era.methods().count("server/discover") == 2 and "initialize" in dual_era.methods()


async def test_a_dual_era_backends_input_request_reaches_a_2026_client(world: World, front: str) -> None:
    """Spoken to in 2026-07-28, the backend asks for input its own way; the client answers."""

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "carol"})

    async with input_backend.serve(dual_era=True) as (url, calls):
        await world.operator.upsert_toolkit("acme", "asks", name="asks", visibility="private", backend_url=url)
        await sync_catalogue(world.operator, "acme", "asks", True, ALLOW_LOOPBACK)
        await world.operator.set_tool_default("acme", "asks", "greet", "always_allow")
        async with mcp_client(
            f"{front}/acme/asks/mcp", world.keys["acme:member"], MODERN, elicitation_callback=elicit
        ) as client:
            result = await client.call_tool("greet", {"greeting": "hello"})
    assert not result.is_error, result
    assert result.content[0].text == f"hello, carol (state {input_backend.BACKEND_STATE})"  # type: ignore[union-attr]
    assert calls == {"asked": 1, "answered": 1}


class _FailingDiscover(PostFilter):
    """A backend whose `server/discover` fails with a bare 503 (an overloaded proxy in front of it)."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.discovers = 0

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        if message.get("method") != "server/discover":
            return message
        self.discovers += 1
        await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"busy"})
        return None


async def test_a_failing_discover_falls_back_to_the_handshake_and_is_asked_again(world: World, front: str) -> None:
    upstream = Upstream()
    backend = _FailingDiscover(upstream.app())
    async with serve_asgi(backend) as base:
        await _register(world, "busy", f"{base}/mcp")
        async with mcp_client(f"{front}/acme/busy/mcp", world.keys["acme:member"], MODERN) as client:
            for text in ("one", "two"):
                assert (await client.call_tool("echo", {"text": text})).content[0].text == text  # type: ignore[union-attr]
    assert upstream.calls["echo"] == 2
    assert backend.discovers == 2  # a failure is no verdict: not remembered
