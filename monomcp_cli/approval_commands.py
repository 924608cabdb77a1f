"""Approval and audit verbs. Each has --json."""

from __future__ import annotations

import json
from datetime import datetime

import typer

from monomcp_cli.admin_client import call
from monomcp_cli.output import console, emit, to_dict

JSON = typer.Option(False, "--json", help="Machine-readable output.")
ORG = typer.Option("", "--org", help="Org slug (default: the credential's org).")
APPROVAL_COLUMNS = ["id", "status", "tool", "toolkit_slug", "arguments_json", "created_at", "expires_at", "reason"]
AUDIT_COLUMNS = [
    "seq",
    "created_at",
    "method",
    "toolkit_slug",
    "tool",
    "actor_display",
    "decision",
    "status",
    "duration_ms",
]


def register(app: typer.Typer) -> typer.Typer:
    approvals = typer.Typer(help="The approval queue.", no_args_is_help=True)
    audit = typer.Typer(help="The audit log.", no_args_is_help=True)
    app.add_typer(approvals, name="approvals")
    app.add_typer(audit, name="audit")

    @approvals.command("list")
    def approvals_list(
        status: str = typer.Option("", help="pending|approved|denied|expired|consumed"),
        org: str = ORG,
        limit: int = typer.Option(50),
        as_json: bool = JSON,
    ) -> None:
        emit(call(lambda c: c.list_approvals(org, status, limit)).approvals, as_json, APPROVAL_COLUMNS)

    @approvals.command("show")
    def approvals_show(approval_id: str, as_json: bool = JSON) -> None:
        approval = call(lambda c: c.get_approval(approval_id))
        if as_json:
            emit(approval, True, [])
        else:
            console.print_json(json.dumps(to_dict(approval)))

    @approvals.command("approve")
    def approvals_approve(approval_id: str, as_json: bool = JSON) -> None:
        emit(call(lambda c: c.decide_approval(approval_id, True)), as_json, APPROVAL_COLUMNS)

    @approvals.command("deny")
    def approvals_deny(
        approval_id: str, reason: str = typer.Option(..., help="Shown to the caller."), as_json: bool = JSON
    ) -> None:
        emit(call(lambda c: c.decide_approval(approval_id, False, reason)), as_json, APPROVAL_COLUMNS)

    def _query(org: str, since: str, toolkit: str, tool: str, status: str, limit: int, token: str = ""):  # type: ignore[no-untyped-def]
        since_dt = datetime.fromisoformat(since) if since else None
        return call(
            lambda c: c.query_audit(
                org, since=since_dt, toolkit=toolkit, tool=tool, status=status, page_size=limit, page_token=token
            )
        )

    @audit.command("list")
    def audit_list(
        org: str = ORG,
        since: str = typer.Option("", help="ISO timestamp"),
        toolkit: str = typer.Option(""),
        tool: str = typer.Option(""),
        status: str = typer.Option(""),
        limit: int = typer.Option(50),
        as_json: bool = JSON,
    ) -> None:
        emit(_query(org, since, toolkit, tool, status, limit).records, as_json, AUDIT_COLUMNS)

    @audit.command("export")
    def audit_export(
        org: str = ORG,
        since: str = typer.Option(""),
        toolkit: str = typer.Option(""),
        tool: str = typer.Option(""),
        status: str = typer.Option(""),
    ) -> None:
        """Every matching row as JSON Lines, newest first."""
        token = ""
        while True:
            page = _query(org, since, toolkit, tool, status, 500, token)
            for record in page.records:
                print(json.dumps(to_dict(record)))
            token = page.next_page_token
            if not token:
                break

    return audit
