"""The approval page a requester is sent to: they sign in on it (password or the calling
key) and read status, who decides and expiry; nothing is kept, and others see nothing."""

from __future__ import annotations

import re

import httpx

from tests.conftest import World, mcp_client

TOKEN = re.compile(r'name="csrf" value="([^"]*)"')
PASSWORD = "requester password 123"


async def _pending(front: str, key: str) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", key) as client:
        result = await client.call_tool("transfer", {"amount": 5, "to": "dave"})
    assert result.meta is not None
    return str(result.meta["monomcp/approval"]["id"])


async def _view(http: httpx.AsyncClient, approval_id: str, **fields: str) -> httpx.Response:
    page = await http.get(f"/console/approvals/{approval_id}")
    assert page.status_code == 200 and "Show the request" in page.text  # not a bounce to the admin sign-in
    found = TOKEN.search(page.text)
    assert found is not None
    origin = {"Origin": str(http.base_url).rstrip("/")}
    return await http.post(
        f"/console/login/approval/{approval_id}", data=fields | {"csrf": found.group(1)}, headers=origin
    )


async def test_the_requester_reads_status_who_decides_and_expiry(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        created = await admin.create_person("", "mel@acme.example", "Mel", "member", PASSWORD)
        del created
        key = (await admin.create_api_key("", "mel's agent", "member")).secret
    approval_id = await _pending(front, key)
    async with httpx.AsyncClient(base_url=front) as http:
        shown = await _view(http, approval_id, credential=key)
        assert shown.status_code == 200, shown.text
        assert "pending" in shown.text and "An admin of org acme" in shown.text and "Expires" in shown.text
        assert "transfer on acme/tools" in shown.text and "ago)" in shown.text
        assert 'action="/console/approvals/' not in shown.text  # read-only: no decision forms
        assert "mmcp_console" not in http.cookies  # no session was opened

        async with world.client("acme:admin") as admin:
            await admin.decide_approval(approval_id, approve=False, reason="<b>not</b> today")
        denied = await _view(http, approval_id, credential=key)
        assert "denied" in denied.text and "&lt;b&gt;not&lt;/b&gt; today" in denied.text  # escaped

        by_password = await _view(http, approval_id, email="mel@acme.example", password=PASSWORD, org="acme")
        assert by_password.status_code == 404  # Mel's password is not Mel's agent key: not the requester


async def test_others_see_nothing_and_wrong_passwords_are_refused(world: World, front: str) -> None:
    approval_id = await _pending(front, world.keys["acme:member"])
    async with httpx.AsyncClient(base_url=front) as http:
        stranger = await _view(http, approval_id, credential=world.keys["globex:admin"])
        assert stranger.status_code == 404 and "transfer" not in stranger.text
        wrong = await _view(http, approval_id, email="nobody@acme.example", password="x" * 12, org="acme")
        assert wrong.status_code == 401 and "Wrong email" in wrong.text
        cross_site = await http.post(
            f"/console/login/approval/{approval_id}",
            data={"credential": world.keys["acme:member"], "csrf": "forged"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403


async def test_the_requester_sees_how_many_approvers_are_needed(world: World, front: str) -> None:
    """It said "An admin of org acme" when the tool's policy needs two distinct approvers."""
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(
            "org: acme\ntoolkits:\n  acme/tools:\n    transfer:\n      approval:\n        approvers: 2\n"
        )
    approval_id = await _pending(front, world.keys["acme:member"])
    async with httpx.AsyncClient(base_url=front) as http:
        shown = await _view(http, approval_id, credential=world.keys["acme:member"])
    assert shown.status_code == 200, shown.text
    assert "2 distinct approvers of org acme (0 of 2 so far)" in shown.text


async def test_the_pending_result_and_approval_status_count_the_approvers(world: World, front: str) -> None:
    """The MCP result said "needs an admin of org 'acme'" and approval_status "Waiting for an
    admin" when the tool's policy needs two distinct approvers."""
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(
            "org: acme\ntoolkits:\n  acme/tools:\n    transfer:\n      approval:\n        approvers: 2\n"
        )
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        pending = await client.call_tool("transfer", {"amount": 5, "to": "dave"})
        assert pending.meta is not None
        approval_id = str(pending.meta["monomcp/approval"]["id"])
        status = await client.call_tool("approval_status", {"approval_id": approval_id})
    said = " ".join(getattr(c, "text", "") for c in pending.content)
    assert "needs 2 distinct approvers of org 'acme' to approve this call" in said
    progress = " ".join(getattr(c, "text", "") for c in status.content)
    assert "Waiting for approvers: 0 of 2 so far." in progress
