"""Every console page in real Chromium at 390 px: an accessibility pass with axe-core (the
maintained checker, from npm: labels, contrast, landmarks, names), nothing wider than the
screen, and a screenshot of each page at both widths when MONOMCP_SCREENSHOTS is set."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World, mcp_client
from tests.e2e.test_console_browser import CHROMIUM, SHOTS, _sign_in, browser_page

AXE_DIR = Path(__file__).parents[2] / ".monomcp" / "axe"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
__all__ = ["browser_page"]


def _axe_source() -> str:
    """axe-core from npm (installed once into .monomcp/axe, like `make conformance`'s suite)."""
    if not AXE.exists():
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "axe-core@4"], cwd=AXE_DIR, check=True)
    return AXE.read_text()


async def _check(page: Any, axe: str, name: str) -> list[str]:
    """Serious or critical axe violations, horizontal overflow; screenshots at both widths."""
    problems = []
    if await page.evaluate("typeof axe") == "undefined":
        await page.evaluate(axe)  # evaluate is not subject to the page's CSP; the page itself stays strict
    found = await page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', '))"
    )
    assert await page.evaluate("axe.version")  # the checker really ran
    problems += [f"{name} {v}" for v in found]
    width = await page.evaluate("document.documentElement.scrollWidth")
    if width > 390:
        problems.append(f"{name}: {width} px wide at 390 px")
    # At 390 px a table's header row is hidden: every cell must carry its column's label.
    unlabelled = await page.evaluate(
        "[...document.querySelectorAll('table:has(thead) tbody td:not([colspan])')]"
        ".filter(td => !td.dataset.label || getComputedStyle(td, '::before').content === 'none').length"
    )
    if unlabelled:
        problems.append(f"{name}: {unlabelled} table cells without their column's label at 390 px")
    if os.environ.get("MONOMCP_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
        await page.set_viewport_size({"width": 1200, "height": 800})
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})
    return problems


async def test_every_page_passes_axe_and_fits_390px(world: World, front: str, browser_page: Any) -> None:
    page = browser_page
    axe = _axe_source()
    await page.set_viewport_size({"width": 390, "height": 844})
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("transfer", {"amount": 4, "to": "a very long recipient name " * 3})
    assert result.meta is not None
    approval_id = result.meta["monomcp/approval"]["id"]
    problems: list[str] = []
    await page.goto(f"{front}/console/approvals/{approval_id}")  # the requester's view, signed out
    problems += await _check(page, axe, "approval-requester")
    await page.goto(f"{front}/console/login")
    problems += await _check(page, axe, "sign-in")
    await _sign_in(page, front, world.keys["acme:admin"])
    async with world.client("acme:admin") as admin:
        key_id = (await admin.create_api_key("", "a build bot", "member")).key.id
        call_id = (await admin.query_audit(tool="transfer", page_size=1)).records[0].call_id
    for path, name in (
        ("/console/approvals", "approval-queue"),
        (f"/console/approvals/{approval_id}", "approval-page"),
        ("/console/audit", "audit-log"),
        ("/console/permissions?toolkit=acme/tools", "permissions"),
        ("/console/keys", "api-keys"),
        (f"/console/keys/{key_id}/revoke", "api-key-revoke"),
        (f"/console/audit/{call_id}", "audit-detail"),
        ("/console/approvals/0123456789abcdef0123456789abcdef", "error-page"),
    ):
        await page.goto(f"{front}{path}")
        if name == "approval-queue":
            assert not await page.locator("#empty").is_visible()  # one request waits: no "nothing waits" line
        problems += await _check(page, axe, name)
    assert not problems, "\n".join(problems)
