"""Every admin action is recorded with the channel it came through (REST api, console, CLI,
plain gRPC) beside the MCP calls, and each source can be picked out again through every
reader (REST, console, CLI), with the chain still verifying (issue #13)."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from typer.testing import CliRunner, Result

from monomcp_cli.main import app
from policy_service import errors
from policy_service.client import PolicyClient
from tests.conftest import OPERATOR, World, mcp_client
from tests.e2e.test_admin_api import _csrf
from tests.e2e.test_console_queue import _sign_in

# The key each channel creates, so each source's rows can be told apart.
NAMES = {"api": "made over rest", "console": "made in the console", "cli": "made by the cli", "grpc": "made over grpc"}


async def _cli(world: World, token: str, *args: str) -> Result:
    env = {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": token}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def _one_action_per_source(world: World, front: str) -> None:
    admin = world.keys["acme:admin"]
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        made = await http.post(
            "/api/v1/api-keys",
            json={"name": NAMES["api"], "role": "member"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        await _sign_in(http, admin)
        keys = await http.get("/console/keys")
        made = await http.post(
            "/console/keys", data={"name": NAMES["console"], "role": "member", "csrf": _csrf(keys.text)}
        )
        assert made.status_code == 200, made.text[:300]
    made_cli = await _cli(world, admin, "keys", "create", NAMES["cli"], "--role", "member")
    assert made_cli.exit_code == 0, made_cli.output
    async with PolicyClient(world.policy_addr, admin) as plain:  # no x-monomcp-source: grpc
        await plain.create_api_key("", NAMES["grpc"], "member")
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.call_tool("add", {"a": 1, "b": 2})


def _key_names(records: list[dict[str, object]]) -> set[str]:
    """The names of the keys that CreateApiKey rows created."""
    return {
        str(json.loads(str(r["request_json"])).get("name", ""))
        for r in records
        if r.get("method") == "admin/CreateApiKey" and r.get("status") == "ok"
    }


async def test_each_source_is_recorded_and_filterable_everywhere_and_the_chain_verifies(
    world: World, front: str
) -> None:
    await _one_action_per_source(world, front)
    admin = world.keys["acme:admin"]
    async with httpx.AsyncClient(base_url=front, timeout=30, headers={"Authorization": f"Bearer {admin}"}) as http:
        for source, name in NAMES.items():
            page = await http.get("/api/v1/audit", params={"source": source, "page_size": 200})
            assert page.status_code == 200, page.text
            records = page.json()["records"]
            assert records and {r["source"] for r in records} == {source}
            # this channel's key, and no other channel's (the fixture's keys are grpc too)
            assert _key_names(records) & set(NAMES.values()) == {name}
        calls = (await http.get("/api/v1/audit", params={"source": "mcp"})).json()["records"]
        assert {r["source"] for r in calls} == {"mcp"} and any(r.get("tool") == "add" for r in calls)
        assert not any(str(r.get("method", "")).startswith("admin/") for r in calls)
        everything = (await http.get("/api/v1/audit", params={"page_size": 200})).json()["records"]
        assert {"api", "console", "cli", "grpc", "mcp"} <= {r["source"] for r in everything}
        bad = await http.get("/api/v1/audit", params={"source": "ftp"})
        assert bad.status_code == 422 and "source" in bad.text

    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, admin)
        shown = await http.get("/console/audit", params={"source": "cli"})
        sources = set(re.findall(r'data-label="Source">([a-z]+)<', shown.text))
        assert sources == {"cli"} and "admin/CreateApiKey" in shown.text
        assert '<option value="cli" selected>CLI</option>' in shown.text  # the dropdown keeps the choice
        calls_only = await http.get("/console/audit", params={"source": "mcp"})
        assert set(re.findall(r'data-label="Source">([a-z]+)<', calls_only.text)) == {"mcp"}

    listed = await _cli(world, admin, "audit", "list", "--source", "console", "--limit", "200", "--json")
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)
    assert {r["source"] for r in records} == {"console"} and _key_names(records) == {NAMES["console"]}
    refused = await _cli(world, admin, "audit", "list", "--source", "ftp")
    assert refused.exit_code != 0 and "source must be one of" in refused.output

    verified = await _cli(world, OPERATOR, "audit", "verify")
    assert verified.exit_code == 0 and "audit log intact" in verified.output, verified.output


async def test_grpc_refuses_an_unknown_source(world: World) -> None:
    async with PolicyClient(world.policy_addr, world.keys["acme:admin"]) as admin:
        with pytest.raises(errors.InvalidArgument, match="source must be one of"):
            await admin.query_audit(source="ftp")


async def test_sign_ins_and_failures_carry_the_channel_they_came_through(world: World, front: str) -> None:
    """Password sign-ins write their own rows: they said `api` whatever the channel."""
    password = "a long enough password"
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "ada@acme.example", "Ada", "admin", password)
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        rest = await http.post(
            "/api/v1/auth/login", json={"email": "ada@acme.example", "password": password, "org": "acme"}
        )
        assert rest.status_code == 200
        form = await http.get("/console/login")
        data = {"email": "ada@acme.example", "password": "wrong!", "org": "acme", "csrf": _csrf(form.text)}
        await http.post("/console/login", data=data, headers={"Origin": front})
    env = {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_PASSWORD": "also wrong"}
    cli = await asyncio.to_thread(
        CliRunner().invoke, app, ["login", "--email", "ada@acme.example", "--org", "acme"], env=env
    )
    assert cli.exit_code != 0
    async with PolicyClient(world.policy_addr) as plain:
        await plain.login("ada@acme.example", password, "acme")
    expected = {
        "api": ("auth/login", "ok"),
        "console": ("auth/console", "failed"),
        "cli": ("auth/login", "failed"),
        "grpc": ("auth/login", "ok"),
    }
    for source, (method, status) in expected.items():
        page = await world.operator.query_audit("acme", source=source, page_size=200)
        rows = {(r.method, r.status) for r in page.records if r.actor_display == "ada@acme.example"}
        assert rows == {(method, status)}, (source, rows)
