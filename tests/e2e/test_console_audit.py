"""The console's audit log: filters by status and actor, pages both ways with a chosen page
size, and shows words and rounded durations."""

from __future__ import annotations

import re

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
