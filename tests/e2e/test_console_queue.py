"""The console's queue: server-sent events carry new requests and decisions as they
happen; a decision made from the queue comes back with a banner; an empty queue says so."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx

from tests.conftest import World, mcp_client

LOGIN_TOKEN = re.compile(r'name="csrf" value="([^"]*)"')


async def _sign_in(http: httpx.AsyncClient, key: str) -> None:
    form = await http.get("/console/login")
    found = LOGIN_TOKEN.search(form.text)
    assert found is not None
    data = {"credential": key, "next": "/console/approvals", "csrf": found.group(1)}
    signed = await http.post("/console/login", data=data, headers={"Origin": str(http.base_url).rstrip("/")})
    assert signed.status_code == 303


async def _pending(front: str, world: World, n: int) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("transfer", {"amount": n, "to": "queue"})
    assert result.meta is not None
    return str(result.meta["monomcp/approval"]["id"])


async def _next_event(lines: Any) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async for line in lines:
            if line.startswith("data: "):
                return dict(json.loads(line[6:]))
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), 30)


async def test_queue_streams_changes_and_confirms_decisions(world: World, front: str) -> None:
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, world.keys["acme:admin"])
        empty = await http.get("/console/approvals")
        assert "No requests are waiting" in empty.text and "Signed in as acme admin" in empty.text
        async with http.stream("GET", "/console/approvals/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            approval_id = await _pending(front, world, 1)
            event = await _next_event(lines)
            assert event["id"] == approval_id and event["status"] == "pending" and event["tool"] == "transfer"
            assert event["toolkit"] == "acme/tools" and '"to": "queue"' in event["arguments"].replace(':"', ': "')

            queue = await http.get("/console/approvals")
            csrf = LOGIN_TOKEN.search(queue.text)
            assert csrf is not None and 'name="reason"' in queue.text and approval_id in queue.text
            decided = await http.post(
                f"/console/approvals/{approval_id}/decide",
                data={"action": "deny", "reason": "later", "back": "queue", "csrf": csrf.group(1)},
                headers={"Origin": front},
            )
            assert decided.status_code == 303
            banner = await http.get(decided.headers["location"])
            assert f"Denied request {approval_id}." in banner.text and 'role="status"' in banner.text
            event = await _next_event(lines)
            assert event["id"] == approval_id and event["status"] == "denied"


async def test_events_need_a_signed_in_admin(world: World, front: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        assert (await http.get("/console/approvals/events")).status_code in (401, 303)
        member = {"Authorization": f"Bearer {world.keys['acme:member']}"}
        assert (await http.get("/console/approvals/events", headers=member)).status_code == 403


async def test_the_operator_picks_an_org(world: World, front: str) -> None:
    from tests.conftest import OPERATOR

    approval_id = await _pending(front, world, 2)
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, OPERATOR)
        first = await http.get("/console/approvals")  # no ORG_REQUIRED error: the first org is shown
        assert first.status_code == 200 and '<select name="org">' in first.text
        acme = await http.get("/console/approvals?org=acme")
        assert approval_id in acme.text and "<option selected>acme</option>" in acme.text
        globex = await http.get("/console/approvals?org=globex")
        assert approval_id not in globex.text and "No requests are waiting" in globex.text
        csrf = LOGIN_TOKEN.search(acme.text)
        assert csrf is not None
        decided = await http.post(
            f"/console/approvals/{approval_id}/decide",
            data={"action": "approve", "back": "queue", "org": "acme", "csrf": csrf.group(1)},
            headers={"Origin": front},
        )
        assert "org=acme" in decided.headers["location"]


async def test_the_operator_picks_an_org_on_every_page(world: World, front: str) -> None:
    """Audit, permissions, keys and notifications were a 400 "org_slug is required" page."""
    from tests.conftest import OPERATOR

    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.call_tool("add", {"a": 1, "b": 1})
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, OPERATOR)
        for path in ("/console/audit", "/console/permissions", "/console/keys", "/console/notifications"):
            page = await http.get(path)
            assert page.status_code == 200 and '<select name="org">' in page.text, (path, page.text[:300])
        every = await http.get("/console/audit?tool=add")
        assert 'data-label="Tool">add<' in every.text  # every org's records by default
        assert 'data-label="Tool">add<' not in (await http.get("/console/audit?tool=add&org=globex")).text
        acme_keys = await http.get("/console/keys?org=acme")
        assert "acme member" in acme_keys.text and "globex member" not in acme_keys.text
        created = await http.post(
            "/console/keys",
            data={"name": "made by the operator", "role": "member", "org": "globex", "csrf": _form_csrf(acme_keys)},
            headers={"Origin": front},
        )
        assert created.status_code == 200 and "Copy this key now" in created.text
        assert "made by the operator" in (await http.get("/console/keys?org=globex")).text
        matrix = await http.get("/console/permissions?org=acme&toolkit=acme/tools")
        assert 'name="p:member:echo"' in matrix.text
        saved = await http.post(
            "/console/permissions",
            data={"toolkit": "acme/tools", "org": "acme", "p:member:echo": "blocked", "csrf": _form_csrf(matrix)},
            headers={"Origin": front},
        )
        assert (
            saved.status_code == 303
            and "org=acme" in saved.headers["location"]
            and "saved=1" in saved.headers["location"]
        )
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        assert "echo" not in {t.name for t in (await client.list_tools()).tools}


def _form_csrf(page: httpx.Response) -> str:
    return page.text.split('name="csrf" value="')[1].split('"')[0]
