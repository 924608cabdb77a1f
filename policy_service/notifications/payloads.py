"""What a notification says: the event for an approval change, the JSON body a webhook
receives (and its signature), the Slack-compatible body, and the email.

Only the redacted copy of the arguments leaves the gateway (the audit log's copy): the
exact arguments are for approvers looking at the approval's page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.message import EmailMessage
from typing import Any

from policy_service.approvals.store import ApprovalRecord

EVENTS = {
    "pending": "approval.pending",
    "approved": "approval.approved",
    "denied": "approval.denied",
    "expired": "approval.expired",
}
_VERBS = {
    "approval.pending": "needs approval",
    "approval.approved": "was approved",
    "approval.denied": "was denied",
    "approval.expired": "expired undecided",
}
SIGNATURE_HEADER = "X-MonoMCP-Signature"
# An admin's test send: the same shape as an approval event, so receivers parse it alike.
TEST_EVENT = "notification.test"


def event_for(status: str, decided_by: str = "") -> str | None:
    """The event an approval in `status` announces. A decided approval that was already
    used (or lapsed unused) still announces its decision: the unique delivery key makes
    that a no-op when the decision was seen first. Undecided consumption: nothing."""
    if decided_by and status in ("consumed", "expired"):
        return "approval.approved"
    return EVENTS.get(status)


def approval_url(public_url: str, approval_id: str) -> str:
    return f"{public_url.rstrip('/')}/console/approvals/{approval_id}"


def event_body(event: str, record: ApprovalRecord, public_url: str) -> dict[str, Any]:
    """The webhook's JSON body (kept in the delivery log and resent as is on retries)."""
    row = record.row
    try:
        arguments: Any = json.loads(row.arguments_json)
    except ValueError:
        arguments = row.arguments_json
    return {
        "type": event,
        "approval": {
            "id": row.id,
            "status": row.status,
            "org": record.org_slug,
            "toolkit": f"{record.toolkit_org_slug}/{record.toolkit_slug}",
            "tool": row.tool,
            "arguments": arguments,
            "requested_by": row.principal_display,
            "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat(),
            "decided_by": row.decided_by,
            "reason": row.reason,
            "url": approval_url(public_url, row.id),
        },
    }


def test_body(org_slug: str, sent_by: str, public_url: str) -> dict[str, Any]:
    """A test event: approval fields filled with what the test is, and nothing to decide."""
    return {
        "type": TEST_EVENT,
        "approval": {
            "id": "test",
            "status": "test",
            "org": org_slug,
            "toolkit": "",
            "tool": "",
            "arguments": {},
            "requested_by": sent_by,
            "created_at": "",
            "expires_at": "",
            "decided_by": "",
            "reason": "",
            "url": f"{public_url.rstrip('/')}/console/notifications",
        },
    }


def summary(body: dict[str, Any]) -> str:
    """One line a person reads in Slack or a subject line."""
    a = body["approval"]
    if body["type"] == TEST_EVENT:
        return f"Test notification for org {a['org']}, sent by {a['requested_by']}: this channel works"
    line = f"{a['tool']} on {a['toolkit']} for {a['requested_by']} {_VERBS.get(body['type'], body['type'])}"
    if body["type"] in ("approval.approved", "approval.denied") and a["decided_by"]:
        line += f" by {a['decided_by']}"
    if body["type"] == "approval.denied" and a["reason"]:
        line += f": {a['reason']}"
    return line


def slack_body(body: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook shape (also understood by Mattermost and Rocket.Chat)."""
    a = body["approval"]
    arguments = json.dumps(a["arguments"], ensure_ascii=False)[:1500]
    text = f"{summary(body)}\n<{a['url']}|Open approval {a['id'][:8]}> · arguments `{arguments}`"
    if body["type"] == TEST_EVENT:
        text = f"{summary(body)}\n<{a['url']}|Notification channels>"
    return {"text": text}


def email(body: dict[str, Any], sender: str, to: list[str]) -> EmailMessage:
    a = body["approval"]
    message = EmailMessage()
    message["Subject"] = f"[MonoMCP] {summary(body)}"[:250]
    message["From"] = sender
    message["To"] = ", ".join(to)
    lines = [
        summary(body),
        "",
        f"Toolkit:      {a['toolkit']}",
        f"Tool:         {a['tool']}",
        f"Requested by: {a['requested_by']}",
        f"Expires:      {a['expires_at']}",
        f"Arguments:    {json.dumps(a['arguments'], ensure_ascii=False, indent=2)}",
        "",
        f"Decide at {a['url']}",
    ]
    if body["type"] == TEST_EVENT:
        lines = [summary(body), "", f"The org's channels and delivery log: {a['url']}"]
    message.set_content("\n".join(lines))
    return message


def signature(secret: str, raw_body: bytes, timestamp: int | None = None) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: receivers recompute it and
    refuse old timestamps (replays)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, raw_body: bytes, header: str, tolerance_seconds: int = 300) -> bool:
    """What a receiver does with the signature header (used by the tests and the docs)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - t) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, raw_body, t), header)
