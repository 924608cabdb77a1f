"""Third-party MCP clients against the gateway with a bearer key, end to end (versions pinned
in tests/clients): the TypeScript SDK, the MCP Inspector CLI, and mcp-remote (the
stdio bridge many desktop clients use), each calling the reference server-everything that
the gateway runs over stdio. The README's "Clients and backends checked" table records them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import pytest_asyncio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_front.backends.catalogue_sync import sync_catalogue
from mcp_front.mcp.server import SERVER_NAME
from policy_service.toolkits.egress import EgressPolicy
from policy_service.toolkits.stdio_backend import StdioSpec
from tests.support import node_clients
from tests.support.gateway_stack import Gateway, gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "@modelcontextprotocol/server-everything/dist/index.js"
INSPECTOR = "@modelcontextprotocol/inspector/clients/launcher/build/index.js"
MCP_REMOTE = "mcp-remote/dist/proxy.js"
SLUG = "everything"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    server = node_clients.package_bin(SERVER)  # installs (or skips) before anything starts
    async with gateway(_sqlite_template, tmp_path_factory.mktemp("clients")) as built:
        await built.operator.upsert_toolkit(
            "acme",
            SLUG,
            name="server-everything",
            visibility="private",
            backend_stdio=StdioSpec(str(node_clients.NODE), (str(server), "stdio")),
            backend_timeout_seconds=30,
            new_tool_permission="always_allow",
        )
        await sync_catalogue(built.operator, "acme", SLUG, False, EgressPolicy(allow_private=True))
        yield built


async def _node(*args: str, home: Path) -> tuple[int, str, str]:
    """Runs Node with a throwaway HOME (the clients keep config and secrets there)."""
    process = await asyncio.create_subprocess_exec(
        str(node_clients.NODE),
        *args,
        cwd=node_clients.install(),
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "NO_COLOR": "1", "CI": "true"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_typescript_sdk(gw: Gateway, tmp_path: Path) -> None:
    script = node_clients.script("ts_sdk_client.mjs")
    code, out, err = await _node(
        str(script),
        gw.endpoint("acme", SLUG),
        gw.keys["acme:member"],
        "echo",
        json.dumps({"message": "from TypeScript"}),
        "demo://resource/dynamic/text/3",
        "simple-prompt",
        home=tmp_path,
    )
    assert code == 0, err
    seen: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert seen["server"]["name"] == SERVER_NAME  # the client talks to the gateway, not the backend
    assert "echo" in seen["tools"] and "get-sum" in seen["tools"]
    assert seen["called"]["content"] == [{"type": "text", "text": "Echo: from TypeScript"}]
    assert seen["resource"]["text"].startswith("Resource 3: ")
    assert seen["prompt"]["content"]["text"] == "This is a simple prompt without arguments."


async def test_inspector_cli_lists_and_calls_tools(gw: Gateway, tmp_path: Path) -> None:
    base = [
        str(node_clients.package_bin(INSPECTOR)),
        "--cli",
        gw.endpoint("acme", SLUG),
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {gw.keys['acme:member']}",
    ]
    code, out, err = await _node(*base, "--method", "tools/list", home=tmp_path)
    assert code == 0, err
    names = {t["name"] for t in json.loads(out)["tools"]}
    assert {"echo", "get-sum"} <= names
    code, out, err = await _node(
        *base, "--method", "tools/call", "--tool-name", "get-sum", "--tool-arg", "a=4", "b=5", home=tmp_path
    )
    assert code == 0, err
    assert json.loads(out)["content"] == [{"type": "text", "text": "The sum of 4 and 5 is 9."}]


async def test_mcp_remote_bridges_a_stdio_client_to_the_gateway(gw: Gateway, tmp_path: Path) -> None:
    bridge = StdioServerParameters(
        command=str(node_clients.NODE),
        args=[
            str(node_clients.package_bin(MCP_REMOTE)),
            gw.endpoint("acme", SLUG),
            "--transport",
            "http-only",
            "--header",
            f"Authorization: Bearer {gw.keys['acme:member']}",
        ],
        env={"HOME": str(tmp_path), "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-remote")},
    )
    async with Client(bridge) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        echoed = await client.call_tool("echo", {"message": "through mcp-remote"})
    assert {"echo", "get-sum"} <= names
    assert echoed.content == [types.TextContent(type="text", text="Echo: through mcp-remote")]
