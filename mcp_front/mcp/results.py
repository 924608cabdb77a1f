"""The tool results the gateway itself writes: approvals, refusals, backend failures.

A result written for a backend's tool must stay valid against that tool's output schema,
which the gateway cannot satisfy: clients that validate (the TypeScript SDK) would reject
the result instead of showing the approval. So these results carry their facts in text and
in `_meta` (`monomcp/approval`, `monomcp/executed`), never in `structuredContent`. Only the
gateway's own `approval_status` tool, which declares no output schema, returns structured content.
"""

from __future__ import annotations

from typing import Any

from mcp_front.edge.routing import base_url_or
from policy_service.wire_views import ApprovalView

APPROVAL_META = "monomcp/approval"
EXECUTED_META = "monomcp/executed"


def text_result(text: str, *, is_error: bool, structured: dict[str, Any] | None = None) -> dict[str, Any]:
    """A plain result; `structured` only for the gateway's own tools (they declare no output schema)."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if structured is not None:
        result["structuredContent"] = structured
    return result


def not_run_result(text: str, facts: dict[str, Any]) -> dict[str, Any]:
    """An error result for a call that did not run, its approval's facts in `_meta`."""
    result = text_result(text, is_error=True)
    result["_meta"] = {APPROVAL_META: facts, EXECUTED_META: False}
    return result


def approval_url(public_url: str, approval_id: str) -> str:
    """The approval's page, on the custom domain the client used when it used one."""
    return f"{base_url_or(public_url).rstrip('/')}/console/approvals/{approval_id}"


def approval_facts(approval: ApprovalView, public_url: str) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "id": approval.id,
        "status": approval.status or "unknown",
        "tool": approval.tool,
        "toolkit": f"{approval.toolkit_org_slug}/{approval.toolkit_slug}",
        "arguments": approval.arguments_json,
        "arguments_sha256": approval.arguments_sha256,
        "requested_by": approval.requester.display,
        "created_at": approval.created_at,
        "expires_at": approval.expires_at,
        "url": approval_url(public_url, approval.id),
    }
    if approval.reason:
        facts["reason"] = approval.reason
    if approval.decided_by:
        facts["decided_by"] = approval.decided_by
    return facts


def where_sent(approval: ApprovalView) -> str:
    """Where the request went: the org's notification channels, or advice when there are none."""
    if approval.notified:
        return f"The request was sent to the admins of org '{approval.org_slug}' via {', '.join(approval.notified)}."
    return f"Org '{approval.org_slug}' has no approval notifications set up: tell one of its admins."


def who_approves(approval: ApprovalView) -> str:
    """Who must approve: "an admin of org 'acme'", or the count a tool's approval policy needs."""
    if approval.required_approvals > 1:
        return f"{approval.required_approvals} distinct approvers of org '{approval.org_slug}'"
    return f"an admin of org '{approval.org_slug}'"


def pending_result(approval: ApprovalView, public_url: str) -> dict[str, Any]:
    facts = approval_facts(approval, public_url)
    facts["notified"] = list(approval.notified)
    text = (
        f"Approval required: '{approval.tool}' needs {who_approves(approval)} to approve this call "
        f"before it runs. Nothing has run yet.\n"
        f"Approval id: {approval.id} (status: {facts['status']}, expires {facts['expires_at']}).\n"
        f"Approval page: {facts['url']}\n"
        f"{where_sent(approval)}\n"
        f"Next: check progress with the approval_status tool "
        f'({{"approval_id": "{approval.id}"}}); once it is approved, call {approval.tool} again with exactly '
        f"the same arguments and it will run once."
    )
    return not_run_result(text, facts)


def denied_result(approval: ApprovalView, public_url: str, message: str) -> dict[str, Any]:
    facts = approval_facts(approval, public_url)
    status = facts["status"]
    reason = approval.reason or message
    text = f"Not run: approval {approval.id} for '{approval.tool}' was {status}"
    text += f" by {approval.decided_by}: {reason}" if approval.decided_by else f". {reason}"
    return not_run_result(text, facts)


def status_report(approval: ApprovalView, public_url: str) -> dict[str, Any]:
    facts = approval_facts(approval, public_url)
    status = facts["status"]
    waiting = "Waiting for an admin."
    if approval.required_approvals > 1:
        waiting = f"Waiting for approvers: {approval.approvals_so_far} of {approval.required_approvals} so far."
    advice = {
        "pending": f"{waiting} Check again later.",
        "approved": f"Approved. Call {approval.tool} again with exactly the same arguments; it will run once.",
        "denied": f"Denied: {approval.reason}",
        "expired": "Expired before it was used. Call the tool again to request a new approval.",
        "consumed": f"Already used by one call of {approval.tool}.",
    }.get(status, "")
    text = f"Approval {approval.id} for '{approval.tool}' is {status}. {advice}\nArguments: {approval.arguments_json}"
    result = text_result(text, is_error=False, structured={"approval": facts})
    result["_meta"] = {APPROVAL_META: facts}
    return result
