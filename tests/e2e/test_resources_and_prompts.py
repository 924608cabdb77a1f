"""Resources, resource templates, prompts and completion through the real gateway, with
real SDK clients in both protocol eras: catalogued by the toolkit sync, listed under the
caller's permissions, refused alike when unknown or blocked, and audited by name."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, mcp_client
from tests.support.item_backend import EMBEDDED_TEXT, ItemBackend
from tests.support.servers import serve_asgi

ERAS = ["legacy", "2026-07-28"]


@dataclass
class Items:
    backend: ItemBackend
    url: str  # the gateway endpoint of acme/items


@pytest.fixture
async def items(world: World, front: str) -> AsyncIterator[Items]:
    backend = ItemBackend()
    async with serve_asgi(backend.app()) as base:
        await world.operator.upsert_toolkit(
            "acme", "items", name="items", visibility="private", backend_url=f"{base}/mcp"
        )
        await sync_catalogue(world.operator, "acme", "items", True, EgressPolicy(allow_private=True))
        yield Items(backend, f"{front}/acme/items/mcp")


@pytest.mark.parametrize("mode", ERAS)
async def test_lists_reads_and_prompts_pass_through_unchanged(items: Items, world: World, mode: str) -> None:
    async with mcp_client(items.url, world.keys["acme:member"], mode=mode) as client:
        resources = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert {"test://static-text", "test://static-binary", "test://secret"} <= set(resources)
        assert resources["test://static-text"].mime_type == "text/plain"
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"test://template/{id}/data", "test://vault/{key}"}

        text = (await client.read_resource("test://static-text")).contents[0]
        assert text.text == "This is the content of the static text resource."  # type: ignore[union-attr]
        binary = (await client.read_resource("test://static-binary")).contents[0]
        assert binary.mime_type == "image/png" and binary.blob  # type: ignore[union-attr]
        templated = (await client.read_resource("test://template/123/data")).contents[0]
        assert "Data for ID: 123" in templated.text  # type: ignore[union-attr]

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert {"test_simple_prompt", "test_prompt_with_arguments", "test_prompt_with_image"} <= prompts
        got = await client.get_prompt("test_prompt_with_arguments", {"arg1": "hello", "arg2": "world"})
        assert got.messages[0].content.text == "Prompt with arguments: arg1='hello', arg2='world'"  # type: ignore[union-attr]
        embedded = await client.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://x"})
        assert embedded.messages[0].content.resource.text == EMBEDDED_TEXT  # type: ignore[union-attr]

        done = await client.complete(
            PromptReference(name="test_prompt_with_arguments"), {"name": "arg1", "value": "test"}
        )
        assert done.completion.values == ["test", "testing", "tested"]


@pytest.mark.parametrize("mode", ERAS)
async def test_blocked_items_are_unlisted_and_refused_like_unknown_ones(items: Items, world: World, mode: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("member", "acme", "items", "test://secret", "blocked", kind="resource")
        await admin.set_org_default("acme", "items", "test://vault/{key}", "blocked", kind="resource_template")
        await admin.set_tool_default("acme", "items", "internal_prompt", "blocked", kind="prompt")
    async with mcp_client(items.url, world.keys["acme:member"], mode=mode) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert "test://secret" not in listed and "test://static-text" in listed
        assert "test://vault/{key}" not in {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        assert "internal_prompt" not in {p.name for p in (await client.list_prompts()).prompts}

        refusals = []
        for uri in ("test://secret", "test://vault/k1", "test://nowhere"):
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            refusals.append((caught.value.error.code, caught.value.error.message.replace(uri, "<uri>")))
        assert len(set(refusals)) == 1, refusals  # blocked and unknown are indistinguishable
        prompt_refusals = []
        for name in ("internal_prompt", "no_such_prompt"):
            with pytest.raises(MCPError) as caught:
                await client.get_prompt(name)
            prompt_refusals.append((caught.value.error.code, caught.value.error.message.replace(name, "<name>")))
        assert len(set(prompt_refusals)) == 1 and prompt_refusals[0][0] == -32602
        with pytest.raises(MCPError):
            await client.complete(ResourceTemplateReference(uri="test://vault/{key}"), {"name": "key", "value": "a"})
    assert items.backend.reads["test://secret"] == 0 and items.backend.reads["test://vault/k1"] == 0
    # The admin's own role has no override: the owner default still lets them read.
    async with mcp_client(items.url, world.keys["acme:admin"], mode=mode) as client:
        assert (await client.read_resource("test://secret")).contents[0].text == "the payroll"  # type: ignore[union-attr]


async def test_needs_approval_refuses_reads_with_a_clear_message(items: Items, world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_tool_default("acme", "items", "test://secret", "needs_approval", kind="resource")
    async with mcp_client(items.url, world.keys["acme:member"]) as client:
        assert "test://secret" in {str(r.uri) for r in (await client.list_resources()).resources}
        with pytest.raises(MCPError) as caught:
            await client.read_resource("test://secret")
    assert "needs an admin's approval" in caught.value.error.message
    assert items.backend.reads["test://secret"] == 0


async def test_private_toolkit_items_do_not_exist_for_other_orgs(items: Items, world: World) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "test://static-text"}}
    headers = {
        "Authorization": f"Bearer {world.keys['globex:admin']}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        answer = await http.post(items.url, json=body, headers=headers)
        unknown = await http.post(items.url.replace("/items/", "/nothing/"), json=body, headers=headers)
    assert answer.status_code == 404 and answer.content == unknown.content
    assert items.backend.reads["test://static-text"] == 0


async def test_every_read_and_get_is_audited_by_item_name(items: Items, world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_role_override("member", "acme", "items", "test://secret", "blocked", kind="resource")
    async with mcp_client(items.url, world.keys["acme:member"]) as client:
        await client.list_resources()
        await client.read_resource("test://template/7/data")
        await client.get_prompt("test_simple_prompt")
        with pytest.raises(MCPError):
            await client.read_resource("test://secret")
    async with world.client("acme:admin") as admin:
        rows = (await admin.query_audit("acme", toolkit="items", page_size=200)).records
    by_item = {(r.method, r.tool, r.status, r.decision) for r in rows}
    assert ("resources/read", "test://template/7/data", "ok", "allow") in by_item
    assert ("prompts/get", "test_simple_prompt", "ok", "allow") in by_item
    assert ("resources/read", "test://secret", "blocked", "blocked") in by_item
    assert any(r.method == "resources/list" for r in rows)


async def test_subscriptions_are_advertised_and_accepted_on_the_initialize_era(items: Items, world: World) -> None:
    """The conformance suite's resources-subscribe/-unsubscribe; delivery: test_standalone_streams.py."""
    async with mcp_client(items.url, world.keys["acme:member"]) as client:
        capabilities = client.server_capabilities
        assert capabilities.resources is not None and capabilities.resources.subscribe
        assert capabilities.prompts is not None and capabilities.completions is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # deprecated in 2026-07-28, still 2025's
            await client.subscribe_resource("test://watched-resource")
            await client.unsubscribe_resource("test://watched-resource")
