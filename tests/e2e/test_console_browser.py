"""The console in real headless Chromium (Debian's package, driven by Playwright):
sign in, watch a pending approval appear live, approve it, see the re-call run; deny
with a reason; filter the audit log and open a call; a `<script>` payload shows as text.
Screenshots land in docs/screenshots/ when MONOMCP_SCREENSHOTS is set."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World, mcp_client

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
SHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
EVIL = "<script>window.__pwned=1</script>"


@pytest.fixture
async def browser_page(database_url: str) -> AsyncIterator[Any]:
    if database_url.startswith("postgresql"):
        pytest.skip("browser flows run once, on SQLite")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        page = await browser.new_page(viewport={"width": 1200, "height": 800})
        blocked: list[str] = []  # the console must work under its own Content-Security-Policy
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        yield page
        await browser.close()
        assert not blocked, blocked


async def _shot(page: Any, name: str) -> None:
    if os.environ.get("MONOMCP_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _sign_in(page: Any, front: str, key: str) -> None:
    await page.goto(f"{front}/console/login")
    await _shot(page, "sign-in")
    await page.fill("input[name=credential]", key)
    await page.click("button:has-text('Sign in')")
    await page.wait_for_url(f"{front}/console/approvals")


async def _call(world: World, front: str, args: dict[str, Any]) -> Any:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        return await client.call_tool("transfer", args)


async def test_live_queue_approve_and_recall_runs(world: World, front: str, browser_page: Any) -> None:
    page = browser_page
    await _sign_in(page, front, world.keys["acme:admin"])
    assert await page.locator("#queue tr[data-id]").count() == 0
    assert await page.locator("#empty").is_visible()  # an empty queue says so
    args = {"amount": 12, "to": EVIL}
    await _call(world, front, args)
    row = page.locator("#queue tr[data-id]").first
    await row.wait_for(timeout=10_000)  # appears without a reload (server-sent events)
    assert await page.evaluate("window.__pwned") is None
    assert EVIL in await row.inner_text()  # shown as text
    assert await row.locator("input[name=reason]").count() == 1  # the deny reason stays inline
    await _shot(page, "approval-queue")
    await row.locator("button:has-text('Approve')").click()
    await page.wait_for_selector("[role=status]:has-text('Approved request')")  # the confirmation banner
    assert await page.locator("#queue tr[data-id]").count() == 0
    result = await _call(world, front, args)
    assert not result.is_error and world.upstream.calls["transfer"] == 1


async def test_deny_with_reason_on_the_approval_page(world: World, front: str, browser_page: Any) -> None:
    page = browser_page
    first = await _call(world, front, {"amount": 99, "to": "mallory"})
    approval_id = first.meta["monomcp/approval"]["id"]
    await _sign_in(page, front, world.keys["acme:admin"])
    await page.goto(f"{front}/console/approvals/{approval_id}")
    await _shot(page, "approval-page")
    await page.fill("input[name=reason]", "mallory is not a customer")
    await page.click("button:has-text('Deny')")
    await page.wait_for_selector("text=denied")
    again = await _call(world, front, {"amount": 99, "to": "mallory"})
    assert again.is_error and "mallory is not a customer" in again.content[0].text


async def test_audit_filter_and_detail_show_payload_as_text(world: World, front: str, browser_page: Any) -> None:
    page = browser_page
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.call_tool("echo", {"text": EVIL})
        await client.call_tool("add", {"a": 1, "b": 2})
    await _sign_in(page, front, world.keys["acme:admin"])
    await page.goto(f"{front}/console/audit")
    await page.fill("input[name=tool]", "echo")
    await page.select_option("select[name=status]", "ok")  # dropdowns, not free text
    await page.click("button:has-text('Filter')")
    await page.wait_for_url("**/console/audit?**tool=echo**")
    rows = page.locator("tbody tr")
    assert await rows.count() == 1
    await _shot(page, "audit-log")
    await rows.first.locator("a").click()
    await page.wait_for_selector("h2:has-text('Response')")
    assert EVIL in await page.locator("pre").first.inner_text()
    assert await page.evaluate("window.__pwned") is None
    await _shot(page, "audit-detail")


async def test_permissions_matrix_and_keys_pages(world: World, front: str, browser_page: Any) -> None:
    page = browser_page
    await _sign_in(page, front, world.keys["acme:admin"])
    await page.goto(f"{front}/console/permissions?toolkit=acme/tools")
    await _shot(page, "permissions")
    row = page.locator("tr", has_text="echo").first
    await row.locator("select[name='p:member:echo']").select_option("blocked")
    await page.click("button:has-text('Save all changes')")
    await page.wait_for_selector("[role=status]:has-text('Saved: 1 change')")
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        assert "echo" not in {t.name for t in (await client.list_tools()).tools}
    await page.goto(f"{front}/console/keys")
    await page.fill("input[name=name]", "browser key")
    assert await page.locator("select[name=role]").input_value() == "member"
    await page.click("button:has-text('Create key')")
    secret = await page.locator("pre").first.inner_text()
    assert secret.startswith("mmcp_")
    await _shot(page, "api-keys")
