"""The reference MCP server, `@modelcontextprotocol/server-everything` (pinned in
tests/clients), behind the gateway over both transports: launched by the gateway
over stdio, and as its own process over streamable HTTP. A Python SDK client uses tools,
resources, resource templates, prompts, completion, progress, logging, sampling and
elicitation through the gateway, as it would against the server directly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import pytest_asyncio
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import PromptReference, ResourceTemplateReference

from mcp_front.backends.catalogue_sync import sync_catalogue
from policy_service.toolkits.egress import EgressPolicy
from policy_service.toolkits.stdio_backend import StdioSpec
from tests.conftest import mcp_client
from tests.support import node_clients
from tests.support.gateway_stack import Gateway, gateway
from tests.support.servers import free_port
from tests.support.standalone_client import standalone

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "@modelcontextprotocol/server-everything/dist/index.js"
TRANSPORTS = ["stdio", "http"]
LEVELS = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}


async def _wait_port(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if process.returncode is not None:
            raise RuntimeError(f"server-everything exited with {process.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("server-everything did not listen")


@contextlib.asynccontextmanager
async def _http_server() -> AsyncIterator[str]:
    """server-everything's own streamable HTTP transport on a free loopback port."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(node_clients.NODE),
        str(node_clients.package_bin(SERVER)),
        "streamableHttp",
        env={"PATH": os.environ.get("PATH", ""), "PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        await process.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    server = node_clients.package_bin(SERVER)  # installs (or skips) before anything starts
    async with _http_server() as http_url, gateway(_sqlite_template, tmp_path_factory.mktemp("everything")) as built:
        common: dict[str, Any] = {"visibility": "private", "backend_timeout_seconds": 30}
        await built.operator.upsert_toolkit(
            "acme",
            "everything-stdio",
            name="server-everything (stdio)",
            # Node runs under a 1 GiB address-space limit (RLIMIT_AS) and a CPU-time budget.
            backend_stdio=StdioSpec(str(node_clients.NODE), (str(server), "stdio"), {}, "", 1024, 600),
            **common,
        )
        await built.operator.upsert_toolkit(
            "acme", "everything-http", name="server-everything (HTTP)", backend_url=http_url, **common
        )
        for slug in ("everything-stdio", "everything-http"):
            await sync_catalogue(built.operator, "acme", slug, False, EgressPolicy(allow_private=True))
            # The reference server's tools are harmless demos: let members call every one.
            for tool in await built.operator.list_catalogue("acme", slug):
                if tool.kind == "tool":
                    await built.operator.set_tool_default("acme", slug, tool.name, "always_allow")
        yield built


def _client(gw: Gateway, transport: str, **kwargs: Any) -> Any:
    return mcp_client(gw.endpoint("acme", f"everything-{transport}"), gw.keys["acme:member"], **kwargs)


def _text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tools(gw: Gateway, transport: str) -> None:
    async with _client(gw, transport) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"echo", "get-sum", "trigger-long-running-operation", "trigger-sampling-request"} <= names
        assert _text(await client.call_tool("echo", {"message": "hello"})) == "Echo: hello"
        assert _text(await client.call_tool("get-sum", {"a": 2, "b": 3})) == "The sum of 2 and 3 is 5."
        image = await client.call_tool("get-tiny-image", {})
        assert any(isinstance(c, types.ImageContent) and c.data for c in image.content)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_2026_client_through_the_gateway(gw: Gateway, transport: str) -> None:
    """The client speaks 2026-07-28 to the gateway; the gateway speaks the backend's era to it."""
    async with _client(gw, transport, mode="2026-07-28") as client:
        assert _text(await client.call_tool("echo", {"message": "modern"})) == "Echo: modern"
        dynamic = (await client.read_resource("demo://resource/dynamic/text/5")).contents[0]
        assert isinstance(dynamic, types.TextResourceContents) and dynamic.text.startswith("Resource 5: ")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resources_templates_prompts_and_completion(gw: Gateway, transport: str) -> None:
    async with _client(gw, transport) as client:
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert "demo://resource/static/document/features.md" in resources
        document = (await client.read_resource("demo://resource/static/document/features.md")).contents[0]
        assert isinstance(document, types.TextResourceContents) and document.text
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "demo://resource/dynamic/text/{resourceId}" in templates
        dynamic = (await client.read_resource("demo://resource/dynamic/text/7")).contents[0]
        assert isinstance(dynamic, types.TextResourceContents) and dynamic.text.startswith("Resource 7: ")

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert {"simple-prompt", "args-prompt", "completable-prompt"} <= prompts
        simple = await client.get_prompt("simple-prompt")
        assert simple.messages[0].content.text == "This is a simple prompt without arguments."

        department = await client.complete(
            PromptReference(name="completable-prompt"), {"name": "department", "value": "E"}
        )
        assert department.completion.values == ["Engineering"]
        person = await client.complete(
            PromptReference(name="completable-prompt"),
            {"name": "name", "value": "A"},
            context_arguments={"department": "Engineering"},
        )
        assert person.completion.values == ["Alice"]
        resource_id = await client.complete(
            ResourceTemplateReference(uri="demo://resource/dynamic/text/{resourceId}"),
            {"name": "resourceId", "value": "12"},
        )
        assert resource_id.completion.values == ["12"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_progress(gw: Gateway, transport: str) -> None:
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async with _client(gw, transport) as client:
        done = await client.call_tool(
            "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
        )
    assert _text(done).startswith("Long running operation completed.")
    assert reported == [1, 2, 3]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sampling_and_elicitation(gw: Gateway, transport: str) -> None:
    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        assert params.system_prompt == "You are a helpful test server."
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="gateway-test"
        )

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert params.mode == "form" and "name" in params.requested_schema["properties"]
        return types.ElicitResult(action="accept", content={"name": "Carol", "check": True})

    async with _client(gw, transport, sampling_callback=sample, elicitation_callback=elicit) as client:
        sampled = _text(await client.call_tool("trigger-sampling-request", {"prompt": "meaning?", "maxTokens": 5}))
        elicited = _text(await client.call_tool("trigger-elicitation-request", {}))
    assert "forty-two" in sampled and "gateway-test" in sampled
    assert "User provided the requested information" in elicited and "Carol" in elicited


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # still 2025's logging
async def test_logging_over_stdio(gw: Gateway) -> None:
    """The level reaches the backend, and a log message it sends during a call reaches the client.
    (Over HTTP, server-everything sends its simulated logs on its standalone stream, not on a
    call's response: test_standalone_notifications.)"""
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with _client(gw, "stdio", logging_callback=on_log) as client:
        await client.set_logging_level("debug")
        started = _text(await client.call_tool("toggle-simulated-logging", {}))
        _text(await client.call_tool("toggle-simulated-logging", {}))  # stop it again
    assert started.startswith("Started simulated, random-leveled logging")
    assert logs, "the backend's log message during the call was not relayed"
    assert all("message" in str(p.data) and p.level in LEVELS for p in logs)


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_logging_level_is_accepted_over_http(gw: Gateway) -> None:
    async with _client(gw, "http") as client:
        await client.set_logging_level("warning")
        assert _text(await client.call_tool("echo", {"message": "after setLevel"})) == "Echo: after setLevel"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_standalone_notifications(gw: Gateway, transport: str) -> None:
    """server-everything sends resource updates and simulated logs outside any call (on its
    standalone stream over HTTP, on stdout between requests over stdio): they reach the client's
    own standalone stream through the gateway (docs/adr/0025), the updates only for what the
    client subscribed to."""
    url, key = gw.endpoint("acme", f"everything-{transport}"), gw.keys["acme:member"]
    async with standalone(url, key) as stream, _client(gw, transport) as client:
        uri = str((await client.list_resources()).resources[0].uri)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # deprecated in 2026-07-28, still 2025's
            await client.subscribe_resource(uri)
        _text(await client.call_tool("toggle-subscriber-updates", {}))
        _text(await client.call_tool("toggle-simulated-logging", {}))
        try:
            await stream.until("notifications/resources/updated")  # every 5 s
            seen = await stream.until("notifications/message")
        finally:
            _text(await client.call_tool("toggle-subscriber-updates", {}))  # stop them again
            _text(await client.call_tool("toggle-simulated-logging", {}))
    updates = [m["params"]["uri"] for m in seen if m["method"] == "notifications/resources/updated"]
    assert updates and set(updates) == {uri}
    assert stream.status == 200
