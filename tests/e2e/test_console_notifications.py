"""The console's notification channels page (issue #15): an org admin adds a webhook (its
signing secret shown once), sends a test that really reaches a local receiver signed, reads
the delivery log (status, attempts, last error), disables, enables and removes a channel;
members are refused. The same flow in real Chromium, with the axe-core pass."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from policy_service.config import Settings
from policy_service.notifications.payloads import SIGNATURE_HEADER, TEST_EVENT, verify
from tests.conftest import World, issue_front_identity, make_settings, mcp_client
from tests.e2e.test_admin_api import _csrf
from tests.e2e.test_console_accessibility import _axe_source, _check
from tests.e2e.test_console_browser import CHROMIUM, _sign_in, browser_page
from tests.e2e.test_console_queue import _sign_in as _sign_in_http
from tests.support.receivers import WebhookReceiver
from tests.support.servers import serve_asgi

__all__ = ["browser_page"]
PAGE = "/console/notifications"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        MONOMCP_SERVICE_TOKEN=asyncio.run(issue_front_identity(database_url)),
        MONOMCP_NOTIFY_POLL_SECONDS=0.2,
        MONOMCP_NOTIFY_RETRY_BASE_SECONDS=0.05,
        MONOMCP_NOTIFY_MAX_ATTEMPTS=2,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    hooks = WebhookReceiver()
    async with serve_asgi(hooks) as base:
        yield hooks, base


async def _log_until(http: httpx.AsyncClient, text: str) -> str:
    """The page once its delivery log shows `text` (bounded: the send runs in the background)."""
    page = ""
    for _ in range(150):
        page = (await http.get(PAGE)).text
        if text in page:
            break
        await asyncio.sleep(0.1)
    return page


def _row(page: str, channel: str) -> str:
    """The channels table's row for `channel`."""
    found = re.search(rf'<tr>\s*<td data-label="Name">{channel}</td>.*?</tr>', page, re.S)
    assert found is not None, page[:2000]
    return found.group(0)


async def test_admin_adds_tests_reads_the_log_disables_and_removes(
    world: World, front: str, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, base = receiver
    hooks.fail = {"/down/T/B/x": 1000}
    async with httpx.AsyncClient(base_url=front, timeout=30) as http:
        await _sign_in_http(http, world.keys["acme:admin"])
        empty = await http.get(PAGE)
        assert empty.status_code == 200 and "No channels yet" in empty.text and "Nothing sent yet" in empty.text
        csrf = _csrf(empty.text)
        added = await http.post(PAGE, data={"csrf": csrf, "name": "ops", "kind": "webhook", "target": f"{base}/hook"})
        assert added.status_code == 200 and "Added webhook channel ops." in added.text
        secret = re.search(r"<pre>(whsec_[^<]+)</pre>", added.text)
        assert secret is not None  # shown once, in the answer: never in an address
        assert secret.group(1) not in (await http.get(PAGE)).text
        await http.post(PAGE, data={"csrf": csrf, "name": "down", "kind": "slack", "target": f"{base}/down/T/B/x"})
        refused = await http.post(PAGE, data={"csrf": csrf, "name": "bad", "kind": "webhook", "target": "ftp://x"})
        assert refused.status_code == 303 and "error=" in refused.headers["location"]
        shown = await http.get(refused.headers["location"])
        assert "Channel bad was not added: target must be an http(s) URL" in shown.text

        tested = await http.post(f"{PAGE}/ops/test", data={"csrf": csrf})
        assert tested.status_code == 303
        assert "Test event queued for ops" in (await http.get(tested.headers["location"])).text
        [sent] = await hooks.wait_for("/hook", 1)
        assert sent.headers["x-monomcp-event"] == TEST_EVENT
        assert verify(secret.group(1), sent.body, sent.headers[SIGNATURE_HEADER.lower()])  # signed like any event
        page = await _log_until(http, 'status-delivered">delivered')
        assert 'data-label="Event">test<' in page and "HTTP 200" in page

        await http.post(f"{PAGE}/down/test", data={"csrf": csrf})
        page = await _log_until(http, 'status-failed">failed')
        failed = re.search(r'<td data-label="Channel">down</td>.*?</tr>', page, re.S)
        assert failed is not None and 'data-label="Attempts">2<' in failed.group(0)  # retried, then given up
        assert "HTTP 503" in failed.group(0) and "the receiver answered HTTP 503" in failed.group(0)

        disabled = await http.post(f"{PAGE}/ops/disable", data={"csrf": csrf})
        page = (await http.get(disabled.headers["location"])).text
        assert "Disabled ops" in page and ">disabled<" in _row(page, "ops") and "Send test" not in _row(page, "ops")
        async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
            result = await client.call_tool("transfer", {"amount": 3, "to": "x"})
        assert result.meta is not None and "ops" not in str(result.meta["monomcp/approval"].get("notified", ""))
        again = await http.post(f"{PAGE}/ops/test", data={"csrf": csrf})
        assert "Could not test ops: the channel is disabled" in (await http.get(again.headers["location"])).text
        await http.post(f"{PAGE}/ops/enable", data={"csrf": csrf})
        assert ">on<" in _row((await http.get(PAGE)).text, "ops")

        confirm = await http.get(f"{PAGE}/ops/remove")
        assert "Remove the webhook channel" in confirm.text and "Cancel" in confirm.text
        removed = await http.post(f"{PAGE}/ops/remove", data={"csrf": _csrf(confirm.text)})
        page = (await http.get(removed.headers["location"])).text
        assert "Removed webhook channel ops." in page and 'data-label="Name">ops<' not in page
        forged = await http.post(f"{PAGE}/down/remove", data={"csrf": "wrong"})
        assert forged.status_code == 403

    async with httpx.AsyncClient(base_url=front, timeout=30) as http:  # admins only
        form = await http.get("/console/login")
        data = {"credential": world.keys["acme:member"], "csrf": _csrf(form.text)}
        refused = await http.post("/console/login", data=data, headers={"Origin": front})
        assert "An+org+admin+is+needed" in refused.headers["location"]
        assert (await http.get(PAGE)).status_code == 303  # to the sign-in page
        member = {"Authorization": f"Bearer {world.keys['acme:member']}"}
        assert (await http.get("/api/v1/notifications/channels", headers=member)).status_code == 403
        assert (await http.post("/api/v1/notifications/channels/down/test", headers=member)).status_code == 403


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
async def test_notifications_page_in_chromium(
    world: World, front: str, receiver: tuple[WebhookReceiver, str], browser_page: Any
) -> None:
    hooks, base = receiver
    page = browser_page
    await _sign_in(page, front, world.keys["acme:admin"])
    await page.click("nav >> text=Notifications")
    await page.wait_for_url(f"{front}{PAGE}")
    await page.fill("input[name=name]", "approvers")
    await page.select_option("select[name=kind]", "slack")
    await page.fill("input[name=target]", f"{base}/slack/T0/B0/token")
    await page.click("button:has-text('Add channel')")
    await page.wait_for_selector("[role=status]:has-text('Added slack channel approvers')")
    assert (await page.locator("pre").inner_text()).startswith("whsec_")
    assert "token" not in await page.locator("td[data-label=Target]").inner_text()  # the URL's path is hidden
    await page.click("button:has-text('Send test')")
    await page.wait_for_selector("[role=status]:has-text('Test event queued for approvers')")
    [sent] = await hooks.wait_for("/slack/T0/B0/token", 1)
    assert b"this channel works" in sent.body
    for _ in range(100):  # the log fills in as the background send finishes
        if await page.locator("td[data-label=Status]:has-text('delivered')").count():
            break
        await page.wait_for_timeout(100)
        await page.reload()
    assert await page.locator("td[data-label=Status]:has-text('delivered')").count() == 1
    await page.click("button:has-text('Disable')")
    await page.wait_for_selector("[role=status]:has-text('Disabled approvers')")
    assert await page.locator("button:has-text('Send test')").count() == 0
    await page.click("button:has-text('Enable')")
    await page.wait_for_selector("[role=status]:has-text('Enabled approvers')")

    axe = _axe_source()
    await page.set_viewport_size({"width": 390, "height": 844})
    problems = await _check(page, axe, "notifications")
    assert not problems, "\n".join(problems)

    await page.click("text=Remove…")
    await page.wait_for_selector("h1:has-text('Remove notification channel')")
    problems = await _check(page, axe, "notification-remove")
    assert not problems, "\n".join(problems)
    await page.click("button:has-text('Remove this channel')")
    await page.wait_for_selector("[role=status]:has-text('Removed slack channel approvers')")
    assert await page.locator("td[data-label=Name]").count() == 0
