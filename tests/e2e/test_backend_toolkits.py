"""What admins store on a toolkit's backend and who sees it; who may sync a catalogue and
what new tools default to; upstream sessions never shared between tenants; client errors
that do not name the backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service import errors
from policy_service.client import PERMISSION_NAMES
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client
from tests.support.servers import serve_asgi
from tests.support.upstream import Upstream


async def _rest_sync(front: str, key: str, toolkit: str) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=front, timeout=30) as http:
        return await http.post(f"/api/v1/toolkits/{toolkit}/sync", headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "internal.example"},
        {"Content-Length": "0"},
        {"Transfer-Encoding": "chunked"},
        {"Connection": "close"},
        {"Upgrade": "websocket"},
        {"X-Token": "a\r\nX-Injected: 1"},
        {"X-Token": "a\x00b"},
    ],
)
async def test_framing_headers_and_line_breaks_are_refused_in_backend_headers(
    world: World, headers: dict[str, str]
) -> None:
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.InvalidArgument) as caught:
            await admin.upsert_toolkit("acme", "tools", backend_headers=headers)
    assert caught.value.reason == "BAD_BACKEND_HEADER"


async def test_a_members_refused_sync_sends_nothing_to_the_backend(world: World, front: str) -> None:
    answer = await _rest_sync(front, world.keys["acme:member"], "acme/tools")
    assert answer.status_code == 403
    async with world.client("acme:member") as member:  # the CLI's path
        with pytest.raises(errors.PermissionDenied):
            await sync_catalogue(member, "acme", "tools", False, EgressPolicy(allow_private=True))
    async with world.client("globex:admin") as other_admin:  # an admin of another org, public toolkit
        with pytest.raises(errors.PermissionDenied):
            await sync_catalogue(other_admin, "acme", "shared", False, EgressPolicy(allow_private=True))
    assert world.upstream.requests == []


async def test_only_the_owning_orgs_admins_see_a_backend_url(world: World) -> None:
    async with world.client("acme:member") as member, world.client("globex:admin") as other:
        assert (await member.get_toolkit("acme", "tools")).backend_url == ""
        assert (await member.get_toolkit("acme", "shared")).backend_url == ""
        assert (await other.get_toolkit("acme", "shared")).backend_url == ""
        listed = {t.slug: t for t in await other.list_toolkits("globex", include_public=True)}
        assert listed["shared"].backend_url == "" and not listed["shared"].manageable
    async with world.client("acme:admin") as admin:
        assert (await admin.get_toolkit("acme", "shared")).backend_url == world.upstream_url
        assert all(t.backend_url == world.upstream_url for t in await admin.list_toolkits("acme"))
    assert (await world.operator.get_toolkit("acme", "shared")).backend_url == world.upstream_url


async def _permissions(world: World, toolkit: str) -> dict[str, str]:
    tools = await world.operator.list_catalogue("acme", toolkit)
    return {t.name: PERMISSION_NAMES[t.default_permission] for t in tools}


async def test_new_tools_default_from_their_annotations_and_existing_tools_keep_theirs(
    world: World, front: str
) -> None:
    async with world.client("acme:admin") as admin:
        await admin.upsert_toolkit("acme", "fresh", backend_url=world.upstream_url)
        strict = await admin.upsert_toolkit(
            "acme", "strict", backend_url=world.upstream_url, new_tool_permission="blocked"
        )
    assert PERMISSION_NAMES[strict.new_tool_permission] == "blocked"
    assert (await _rest_sync(front, world.keys["acme:admin"], "acme/fresh")).status_code == 200
    fresh = await _permissions(world, "fresh")
    assert fresh["echo"] == "always_allow"  # readOnlyHint
    assert fresh["wipe"] == "needs_approval"  # destructiveHint
    assert fresh["add"] == fresh["transfer"] == "needs_approval"  # no annotations: the toolkit's default
    await world.operator.set_tool_default("acme", "fresh", "add", "always_allow")
    await world.operator.set_tool_default("acme", "fresh", "echo", "blocked")
    assert (await _rest_sync(front, world.keys["acme:admin"], "acme/fresh")).status_code == 200
    again = await _permissions(world, "fresh")
    assert again["add"] == "always_allow" and again["echo"] == "blocked"  # a re-sync keeps them
    assert (await _rest_sync(front, world.keys["acme:admin"], "acme/strict")).status_code == 200
    blocked = await _permissions(world, "strict")
    assert blocked["echo"] == "always_allow" and blocked["transfer"] == blocked["add"] == "blocked"


@pytest.fixture
async def stateful_upstream() -> AsyncIterator[tuple[Upstream, str]]:
    """An upstream that keeps MCP sessions, so a session opened with one credential is visible."""
    backend = Upstream(stateful=True)
    async with serve_asgi(backend.app()) as base:
        yield backend, f"{base}/mcp"


async def test_upstream_sessions_are_never_shared_between_tenants(
    world: World, front: str, stateful_upstream: tuple[Upstream, str]
) -> None:
    backend, url = stateful_upstream
    catalogue = await backend.catalogue()
    toolkits = {
        ("acme", "keyed"): {"Authorization": "Bearer acme-backend-credential"},
        ("globex", "keyed"): {"Authorization": "Bearer globex-backend-credential"},
        ("acme", "open"): {},
        ("globex", "open"): {},
    }
    for (org, slug), headers in toolkits.items():
        await world.operator.upsert_toolkit(org, slug, backend_url=url, backend_headers=headers)
        await world.operator.sync_tools(org, slug, catalogue)
    for _ in range(2):
        for org, slug in toolkits:
            async with mcp_client(f"{front}/{org}/{slug}/mcp", world.keys[f"{org}:member"]) as client:
                result = await client.call_tool("echo", {"text": f"{org}/{slug}"})
            assert not result.is_error, result
    calls = [r for r in backend.requests if r.method == "tools/call"]
    assert len(calls) == 8
    # Every call ran in a session its own credential opened.
    assert all(r.session_id and r.session_opened_by == r.authorization for r in calls)
    assert {r.authorization for r in calls} == {
        "",
        "Bearer acme-backend-credential",
        "Bearer globex-backend-credential",
    }
    # Same URL, same (no) credential, different orgs: still different sessions.
    open_sessions = {r.session_id for r in calls if not r.authorization}
    assert len(open_sessions) == 2


async def test_client_errors_do_not_name_the_backend_address(world: World, front: str) -> None:
    await world.operator.upsert_toolkit("acme", "tools", backend_url="http://127.0.0.1:9/mcp")
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("echo", {"text": "x"})
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and "unreachable" in text
    assert "127.0.0.1" not in text and ":9" not in text
    audit = await world.operator.query_audit("acme", tool="echo")
    assert "127.0.0.1:9" in audit.records[0].error
