"""The before/after an admin action's row keeps is readable where people look: the console's
call page (a diff table), `monomcp audit show`, and the REST audit API's `change` (issue #13)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from monomcp_cli.main import app
from tests.conftest import World
from tests.e2e.test_console_queue import _sign_in

SECRET = "sk-live-view-secret-0123456789"


async def _cli(world: World, token: str, *args: str) -> Result:
    env = {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": token, "COLUMNS": "200"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def _toolkit_row(world: World) -> Any:
    async with world.client("acme:admin") as admin:
        await admin.upsert_toolkit(
            "acme",
            "tools",
            visibility="public",
            backend_url=world.upstream_url,
            backend_headers={"Authorization": f"Bearer {SECRET}"},
        )
    records = (await world.operator.query_audit("acme", page_size=200)).records
    return next(r for r in records if r.method == "admin/UpsertToolkit" and r.status == "ok")


async def test_rest_returns_the_change(world: World, front: str) -> None:
    row = await _toolkit_row(world)
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        found = await http.get(
            "/api/v1/audit",
            params={"call_id": row.call_id},
            headers={"Authorization": f"Bearer {world.keys['acme:admin']}"},
        )
    assert found.status_code == 200, found.text
    record = found.json()["records"][0]
    assert record["change"]["before"]["visibility"] == "private"
    assert record["change"]["after"]["visibility"] == "public"
    assert record["change"]["after"]["backend_headers"] == {"Authorization": "[REDACTED]"}
    assert SECRET not in found.text


async def test_console_shows_a_diff_table(world: World, front: str) -> None:
    row = await _toolkit_row(world)
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, world.keys["acme:admin"])
        page = await http.get(f"/console/audit/{row.call_id}")
    assert page.status_code == 200, page.text[:300]
    html = page.text
    assert "<h2>Change</h2>" in html and "changed: " in html
    visibility = html[html.index('<th scope="row">visibility</th>') :]
    visibility = visibility[: visibility.index("</tr>")]
    assert "private" in visibility and "<strong><code>public</code></strong>" in visibility
    assert SECRET not in html


async def test_cli_audit_show_prints_before_and_after(world: World) -> None:
    row = await _toolkit_row(world)
    shown = await _cli(world, world.keys["acme:admin"], "audit", "show", row.call_id)
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.strip().startswith("visibility"))
    assert "changed: visibility, backend_headers" in shown.output
    assert line.index("private") < line.index("public")
    assert "[REDACTED]" in shown.output and SECRET not in shown.output
    as_json = await _cli(world, world.keys["acme:admin"], "audit", "show", row.call_id, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["change"]["after"]["visibility"] == "public"
