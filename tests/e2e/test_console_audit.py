"""The console's audit log: filters by status and actor, pages both ways with a chosen page
size, and shows words and rounded durations."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import httpx

from tests.conftest import World, mcp_client
from tests.e2e.test_console_queue import _sign_in

LINK = re.compile(r'<a href="(/console/audit\?[^"]+)">(← Newer|Older →)</a>')


async def test_audit_pages_both_ways_and_filters_by_status(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        for n in range(5):
            await client.call_tool("add", {"a": n, "b": 1})
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, world.keys["acme:admin"])
        first = await http.get("/console/audit?tool=add&page_size=2")
        assert first.text.count('data-label="Tool">add<') == 2 and "← Newer" not in first.text
        assert "PERMISSION_" not in first.text and " ms<" in first.text
        # the permission as a word, never the enum's number (it once showed "2")
        assert first.text.count('data-label="Permission">always allow<') == 2
        links = {label: href.replace("&amp;", "&") for href, label in LINK.findall(first.text)}
        second = await http.get(links["Older →"])
        links2 = {label: href.replace("&amp;", "&") for href, label in LINK.findall(second.text)}
        third = await http.get(links2["Older →"])
        assert third.text.count('data-label="Tool">add<') == 1
        links3 = {label: href.replace("&amp;", "&") for href, label in LINK.findall(third.text)}
        back = await http.get(links3["← Newer"])
        assert back.text.count('data-label="Tool">add<') == 2
        back_again = {label: h.replace("&amp;", "&") for h, label in LINK.findall(back.text)}["← Newer"]
        assert "page_token=&" in back_again or back_again.endswith("page_token=")
        none = await http.get("/console/audit?tool=add&status=denied")
        assert "No requests match" in none.text
        bad = await http.get("/console/audit?since=yesterday", headers={"Accept": "text/html"})
        assert bad.status_code == 400 and "<h1>Error 400</h1>" in bad.text


async def test_call_detail_is_readable_and_marks_redactions(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.call_tool("login", {"username": "ann", "password": "hunter2-secret"})
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, world.keys["acme:admin"])
        listing = await http.get("/console/audit?tool=login")
        call_id = re.search(r'href="/console/audit/([0-9a-f]+)"', listing.text)
        assert call_id is not None
        detail = await http.get(f"/console/audit/{call_id.group(1)}")
        assert "Redacted before storing" in detail.text and "password" in detail.text
        assert "hunter2-secret" not in detail.text and "PERMISSION_" not in detail.text
        assert re.search(r"<th scope=\"row\">Permission</th><td>(always allow|needs approval)</td>", detail.text)
        assert "<h2>Request</h2>" in detail.text and "\n  &#34;arguments&#34;: {" in detail.text  # pretty-printed
        assert re.search(r"<td>\d+(\.\d)? (ms|s)</td>", detail.text)  # a rounded duration


async def test_a_call_not_completed_says_so_in_the_console_and_the_cli(world: World, front: str) -> None:
    """A `started` call with no completion record (still running, or its front died) was shown
    as "Completed —" and "0.0 ms", as if it had finished instantly at no known time."""
    async with world.service() as service:  # allowed to run, never completed: a front that died
        call = await service.authorize_tool_call(world.keys["acme:member"], "acme", "tools", "add", '{"a": 1, "b": 2}')
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in(http, world.keys["acme:admin"])
        detail = (await http.get(f"/console/audit/{call.call_id}")).text
        listing = (await http.get("/console/audit?status=started")).text
    completed = '<th scope="row">Completed</th><td><strong>Not completed</strong> <span class="muted">(status started:'
    assert completed in detail
    assert '<th scope="row">Duration</th><td>not completed</td>' in detail
    assert "none yet: the call has not completed" in detail
    assert '<td data-label="Duration">not completed</td>' in listing
    env = os.environ | {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": world.keys["acme:admin"]}
    env |= {"COLUMNS": "400"}
    command = [sys.executable, "-m", "monomcp_cli.main", "audit"]
    shown = await asyncio.to_thread(
        subprocess.run, [*command, "show", call.call_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "not completed (started)" in shown.stdout and "0.0" not in shown.stdout
    listed = await asyncio.to_thread(
        subprocess.run, [*command, "list", "--status", "started"], env=env, capture_output=True, text=True, timeout=120
    )
    assert "not completed" in listed.stdout and "0.0" not in listed.stdout
