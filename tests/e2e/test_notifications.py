"""Approvals reach approvers: signed webhooks, Slack-compatible webhooks and email, sent
in the background by the policy service, retried with backoff, logged for admins; the
requester's pending result says where the request went."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from typing import Any

import httpx2
import pytest

from policy_service import errors
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.notifications.payloads import SIGNATURE_HEADER, verify
from tests.conftest import World, issue_front_identity, make_settings, mcp_client
from tests.support.receivers import WebhookReceiver, smtp_server
from tests.support.servers import serve_asgi

ARGS = {"amount": 7, "to": "carol"}


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Message]]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(database_url: str, smtp: tuple[int, list[Message]]) -> Settings:
    return make_settings(
        database_url,
        MONOMCP_SERVICE_TOKEN=asyncio.run(issue_front_identity(database_url)),
        MONOMCP_SMTP_HOST="127.0.0.1",
        MONOMCP_SMTP_PORT=smtp[0],
        MONOMCP_SMTP_STARTTLS=False,
        MONOMCP_SMTP_FROM="gateway@monomcp.test",
        MONOMCP_NOTIFY_POLL_SECONDS=0.2,
        MONOMCP_NOTIFY_RETRY_BASE_SECONDS=0.05,
        MONOMCP_NOTIFY_MAX_ATTEMPTS=3,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    hooks = WebhookReceiver()
    async with serve_asgi(hooks) as base:
        yield hooks, base


async def _request(front: str, key: str, args: dict[str, Any] = ARGS) -> Any:
    async with mcp_client(f"{front}/acme/tools/mcp", key) as client:
        return await client.call_tool("transfer", args)


async def _deliveries(admin: PolicyClient, channel: str, want: int, status: str = "delivered") -> list[Any]:
    """The channel's delivery log once `want` rows have `status` (bounded wait)."""
    rows: list[Any] = []
    for _ in range(150):
        rows = await admin.list_notification_deliveries(channel=channel)
        if sum(r.status == status for r in rows) >= want:
            break
        await asyncio.sleep(0.1)
    return rows


async def test_pending_and_decisions_reach_webhook_slack_and_email(
    world: World, front: str, receiver: tuple[WebhookReceiver, str], smtp: tuple[int, list[Message]]
) -> None:
    hooks, base = receiver
    async with world.client("acme:admin") as admin:
        webhook = await admin.create_notification_channel("", "ops", "webhook", f"{base}/hook")
        slack = await admin.create_notification_channel("", "chat", "slack", f"{base}/slack/T000/B000/XXXX")
        email = await admin.create_notification_channel("", "approvers", "email", "boss@acme.example")
        assert webhook.signing_secret.startswith("whsec_") and email.signing_secret == ""
        assert slack.channel.target == f"{base}/…"  # the path of a Slack URL is its token: not shown again

        first = await _request(front, world.keys["acme:member"])
        approval_id = first.meta["monomcp/approval"]["id"]
        text = first.content[0].text
        assert "via email approvers, slack chat, webhook ops" in text
        assert first.meta["monomcp/approval"]["notified"] == ["email approvers", "slack chat", "webhook ops"]

        [pending] = await hooks.wait_for("/hook", 1)
        body = json.loads(pending.body)
        assert body["type"] == "approval.pending" and pending.headers["x-monomcp-event"] == "approval.pending"
        assert body["approval"]["id"] == approval_id and body["approval"]["tool"] == "transfer"
        assert body["approval"]["arguments"] == ARGS and body["approval"]["url"].endswith(approval_id)
        assert verify(webhook.signing_secret, pending.body, pending.headers[SIGNATURE_HEADER.lower()])
        assert not verify(webhook.signing_secret, pending.body + b" ", pending.headers[SIGNATURE_HEADER.lower()])
        [chat] = await hooks.wait_for("/slack/T000/B000/XXXX", 1)
        assert "transfer on acme/tools" in json.loads(chat.body)["text"] and approval_id[:8] in chat.body.decode()

        await admin.decide_approval(approval_id, approve=False, reason="not this week")
        decided = await hooks.wait_for("/hook", 2)
        assert json.loads(decided[1].body)["type"] == "approval.denied"
        assert json.loads(decided[1].body)["approval"]["reason"] == "not this week"
        chats = await hooks.wait_for("/slack/T000/B000/XXXX", 2)
        assert "was denied by" in json.loads(chats[1].body)["text"]

        log = await _deliveries(admin, "approvers", 2)
        assert {(d.event, d.status) for d in log} == {
            ("approval.pending", "delivered"),
            ("approval.denied", "delivered"),
        }
        _, inbox = smtp
        assert len(inbox) == 2 and inbox[0]["To"] == "boss@acme.example"
        assert "needs approval" in inbox[0]["Subject"] and approval_id in str(inbox[0].get_payload(decode=True))
        # Exactly one delivery per event and channel, however often the change was noticed.
        assert len(await admin.list_notification_deliveries()) == 6


async def test_failed_deliveries_are_retried_with_backoff_then_given_up(
    world: World, front: str, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, base = receiver
    hooks.fail = {"/flaky": 2, "/dead": 1000}
    async with world.client("acme:admin") as admin:
        await admin.create_notification_channel("", "flaky", "webhook", f"{base}/flaky")
        await admin.create_notification_channel("", "dead", "webhook", f"{base}/dead")
        await _request(front, world.keys["acme:member"])

        [flaky] = await _deliveries(admin, "flaky", 1)
        assert flaky.status == "delivered" and flaky.attempts == 3 and flaky.response_status == 200
        [dead] = await _deliveries(admin, "dead", 1, status="failed")
        assert dead.status == "failed" and dead.attempts == 3  # MONOMCP_NOTIFY_MAX_ATTEMPTS
        assert dead.response_status == 503 and "503" in dead.last_error
        assert len(hooks.at("/dead")) == 3
        # The same signed body each time: a receiver can deduplicate by X-MonoMCP-Delivery.
        assert len({r.headers["x-monomcp-delivery"] for r in hooks.at("/flaky")}) == 1


async def test_a_slow_receiver_never_holds_up_the_decision(
    world: World, front: str, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, base = receiver
    hooks.hold = {"/slow": asyncio.Event()}
    async with world.client("acme:admin") as admin:
        await admin.create_notification_channel("", "slow", "webhook", f"{base}/slow")
        first = await _request(front, world.keys["acme:member"])
        await hooks.wait_for("/slow", 1)  # the receiver is now sitting on the pending event
        decided = await admin.decide_approval(first.meta["monomcp/approval"]["id"], approve=True)
        assert decided.decided_by  # answered while the receiver still holds its first request
        assert len(hooks.at("/slow")) == 1
        executed = await _request(front, world.keys["acme:member"])
        assert not executed.is_error and world.upstream.calls["transfer"] == 1
        hooks.hold["/slow"].set()


async def test_channels_are_admin_only_checked_and_per_org(world: World, front: str) -> None:
    async with world.client("acme:member") as member:
        with pytest.raises(errors.PermissionDenied):
            await member.create_notification_channel("", "x", "webhook", "https://hooks.example.com/x")
    async with world.client("acme:admin") as admin:
        for kind, target in (
            ("webhook", "ftp://hooks.example.com/x"),
            ("webhook", "https://user:pw@hooks.example.com/x"),
            ("email", "not an address"),
            ("pager", "https://hooks.example.com/x"),
        ):
            with pytest.raises(errors.InvalidArgument):
                await admin.create_notification_channel("", "bad", kind, target)
        await admin.create_notification_channel("", "ops", "webhook", "https://hooks.example.com/x")
        with pytest.raises(errors.AlreadyExists):
            await admin.create_notification_channel("", "ops", "webhook", "https://hooks.example.com/y")
    async with world.client("globex:admin") as other:
        assert await other.list_notification_channels() == []
        with pytest.raises(errors.NotFound):
            await other.delete_notification_channel("", "ops")


async def test_rest_manages_channels_and_shows_the_delivery_log(world: World, front: str) -> None:
    admin = {"Authorization": f"Bearer {world.keys['acme:admin']}"}
    async with httpx2.AsyncClient(base_url=front) as http:
        created = await http.post(
            "/api/v1/notifications/channels",
            headers=admin,
            json={"name": "ops", "kind": "slack", "target": "https://hooks.example.com/services/T/B/secret"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["signing_secret"].startswith("whsec_")
        assert "secret" not in created.json()["channel"]["target"]
        listed = await http.get("/api/v1/notifications/channels", headers=admin)
        assert [c["name"] for c in listed.json()] == ["ops"]
        assert (await http.get("/api/v1/notifications/deliveries", headers=admin)).json() == []
        member = {"Authorization": f"Bearer {world.keys['acme:member']}"}
        assert (await http.get("/api/v1/notifications/channels", headers=member)).status_code == 403
        bad = await http.post("/api/v1/notifications/channels", headers=admin, json={"name": "x", "kind": "pager"})
        assert bad.status_code == 422
        assert (await http.delete("/api/v1/notifications/channels/ops", headers=admin)).status_code == 200
        assert (await http.get("/api/v1/notifications/channels", headers=admin)).json() == []
