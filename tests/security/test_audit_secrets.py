"""Attack matrix: secrets an admin action carries outside any secret-named field stay out of
the audit log. A Slack (or any) webhook URL is its own credential: whoever holds
`https://hooks.slack.com/services/T…/B…/<token>` may post into the channel. The channel's
view shows it without path and query; the audit row of its creation must not keep more.

Regression: the admin-action row of CreateNotificationChannel stored the full URL, readable
by every admin of the org through the audit API and copied into every export."""

from __future__ import annotations

import pytest

from policy_service import errors
from tests.support.attack_stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "XoXbSecretPathToken9"


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("slack", f"https://hooks.slack.com/services/T0001/B0001/{TOKEN}"),
        ("webhook", f"https://hooks.example.com/notify?token={TOKEN}"),
    ],
)
async def test_webhook_url_secret_is_not_in_the_audit_row(stack: Stack, kind: str, target: str) -> None:
    name = f"{kind}-{len(target)}"
    async with stack.client("acme:admin") as admin:
        created = await admin.create_notification_channel("", name, kind, target)
        await admin.delete_notification_channel("", name)
    assert TOKEN not in created.channel.target
    rows = [
        r
        for r in await stack.rows_where("method = :v", "admin/CreateNotificationChannel")
        if f'"{name}"' in r["request_payload"]
    ]
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert TOKEN not in rows[0]["request_payload"] + rows[0]["response_payload"]
    assert "hooks." in rows[0]["request_payload"]  # the host stays: which receiver it was


async def test_refused_url_credentials_are_not_in_the_audit_row(stack: Stack) -> None:
    """A URL with user info is refused, and its refusal is audited: without the password."""
    async with stack.client("acme:admin") as admin:
        with pytest.raises(errors.InvalidArgument):
            await admin.create_notification_channel(
                "", "userinfo", "webhook", f"https://ops:{TOKEN}@hooks.example.com/"
            )
    rows = [
        r
        for r in await stack.rows_where("method = :v", "admin/CreateNotificationChannel")
        if '"userinfo"' in r["request_payload"]
    ]
    assert len(rows) == 1 and rows[0]["status"] == "invalid_argument"
    assert TOKEN not in rows[0]["request_payload"]
