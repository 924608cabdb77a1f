"""Approval and audit verbs. Each has --json; approval ids may be given as a unique prefix."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from google.protobuf.message import Message
from rich import box
from rich.table import Table
from rich.text import Text

from monomcp_cli.admin_client import call, call_until_interrupted
from monomcp_cli.output import age, cell, console, emit, to_dict
from policy_service.audit_changes import change_of, field_changes, summary
from policy_service.client import APPROVAL_STATUS_NAMES, Approval, PolicyClient
from policy_service.errors import InvalidArgument, NotFound
from policy_service.wire_enums import AUDIT_SOURCES

JSON = typer.Option(False, "--json", help="Machine-readable output.")
ORG = typer.Option("", "--org", help="Org slug (default: the credential's org).")
SINCE = typer.Option("", help="Only records from this ISO time on (UTC unless it names a zone), e.g. 2026-11-26T09:00")
TOOLKIT = typer.Option("", help="Only this toolkit (its slug)")
TOOL_FILTER = typer.Option("", help="Only this tool")
STATUS = typer.Option("", help="Only this status: ok, error, started, pending_approval, denied, blocked, abandoned, …")
SOURCE = typer.Option(
    "", "--source", help=f"Only records from one source: {', '.join(AUDIT_SOURCES)} (mcp = client calls)."
)
APPROVAL_COLUMNS = ["id", "status", "tool", "toolkit_slug", "arguments_json", "created_at", "expires_at", "reason"]
# The call id first: `audit show` takes it (it was missing, so the table named no record to
# show); toolkit and decision are left to `audit show` and --json, so a row fits ~160 columns.
AUDIT_COLUMNS = ["call_id", "created_at", "method", "tool", "actor_display", "status", "duration_ms", "source"]
# `audit show`: one field a line (a one-row table of a dozen columns was unreadable at 80 wide),
# with when the call completed (or that it has not).
AUDIT_SHOW_FIELDS = [
    "call_id",
    "seq",
    "created_at",
    "completed_at",
    "source",
    "method",
    "org_slug",
    "toolkit_org_slug",
    "toolkit_slug",
    "tool",
    "actor_display",
    "actor_id",
    "permission",
    "rule",
    "decision",
    "approval_id",
    "status",
    "error",
    "duration_ms",
    "request_id",
]
NOT_COMPLETED = "not completed"
FULL_ID = 32
_PREFIX_PAGES = 20


async def resolve_approval_id(client: PolicyClient, given: str, status: str = "") -> str:
    """The full id of the one approval whose id starts with `given` (ids are 32 hex digits)."""
    given = given.strip().lower().rstrip("…").rstrip(".")
    if len(given) == FULL_ID:
        return given
    if len(given) < 4 or not all(c in "0123456789abcdef" for c in given):
        raise InvalidArgument("give the approval id, or at least its first 4 characters", "BAD_ID")
    matches: list[str] = []
    token = ""
    for _ in range(_PREFIX_PAGES):
        page = await client.list_approvals("", status, 500, token)
        matches += [a.id for a in page.approvals if a.id.startswith(given)]
        token = page.next_page_token
        if len(matches) > 1 or not token:
            break
    if not matches:
        raise NotFound(f"no {status + ' ' if status else ''}approval id starts with {given}", "APPROVAL_NOT_FOUND")
    if len(matches) > 1:
        raise InvalidArgument(f"{given} is ambiguous: {', '.join(matches[:5])}", "AMBIGUOUS_ID")
    return matches[0]


def _since(text: str) -> datetime | None:
    """--since as a time (UTC unless it names a zone); a bad one is a usage error, not a traceback."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO time: give e.g. 2026-11-26 or 2026-11-26T09:00", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def audit_cell(record: Message, column: str) -> str:
    """A record's cell, except that a call with no completion record (status `started`: still
    running, or its process stopped first) says it has not completed instead of 0.0 ms."""
    if column in ("duration_ms", "completed_at") and not record.HasField("completed_at"):
        return f"{NOT_COMPLETED} ({getattr(record, 'status', '')})" if column == "completed_at" else NOT_COMPLETED
    return cell(record, column)


def _describe(a: Approval) -> str:
    return f"{a.tool} on {a.toolkit_org_slug}/{a.toolkit_slug} for {a.requester.display}"


def _approval_facts(a: Approval) -> list[tuple[str, str]]:
    """`approvals show`'s lines, in the order an approver reads them."""
    who = a.requester
    requester = f"{who.display} ({', '.join(p for p in (who.role, f'{who.kind} {who.id}'.strip()) if p)})"
    return [
        ("id", a.id),
        ("status", APPROVAL_STATUS_NAMES.get(a.status, "")),
        ("request", f"{a.tool} on {a.toolkit_org_slug}/{a.toolkit_slug}"),
        ("requester", requester if who.display or who.id else ""),
        ("org", a.org_slug),
        ("created_at", cell(a, "created_at")),
        ("expires_at", cell(a, "expires_at")),
        ("approvals", f"{a.approvals_so_far} of {a.required_approvals}" if a.required_approvals else ""),
        ("covers", a.scope),
        ("window_until", cell(a, "window_until")),
        ("decided_by", a.decided_by),
        ("decided_at", cell(a, "decided_at")),
        ("reason", a.reason),
        ("consumed_by_call_id", a.consumed_by_call_id),
        ("notified", ", ".join(a.notified)),
    ]


def _pretty_arguments(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def print_approval(a: Approval) -> None:
    """One approval as `audit show` shows a record: a field a line (empty ones left out), then
    the arguments that will run, indented, and their hash; a pending one ends with the commands
    that decide it. Every line fits 80 columns with the ids whole."""
    facts = Table(box=box.SIMPLE, show_header=False)
    facts.add_column("field", style="bold", no_wrap=True)
    facts.add_column("value", overflow="fold")
    for name, value in _approval_facts(a):
        if value:
            facts.add_row(name, Text(value))  # Text: stored values such as "[REDACTED]" stay as they are
    console.print(facts)
    console.print("[bold]arguments[/bold]")
    console.print(Text(_pretty_arguments(a.arguments_json or "{}")))
    console.print(Text(f"sha256 {a.arguments_sha256}"), style="dim")
    if APPROVAL_STATUS_NAMES.get(a.status) == "pending":
        console.print(
            Text(f"\napprove: monomcp approvals approve {a.id}\ndeny:    monomcp approvals deny {a.id} --reason TEXT")
        )


def register(app: typer.Typer) -> typer.Typer:
    approvals = typer.Typer(help="The approval queue.", no_args_is_help=True)
    audit = typer.Typer(help="The audit log.", no_args_is_help=True)
    app.add_typer(approvals, name="approvals")
    app.add_typer(audit, name="audit")

    @approvals.command("list")
    def approvals_list(
        status: str = typer.Option("", help="pending|approved|denied|expired|consumed"),
        org: str = ORG,
        limit: int = typer.Option(50, help="At most this many approvals"),
        as_json: bool = JSON,
    ) -> None:
        """The org's approvals, newest first, with their full ids (decisions take a prefix)."""
        found = call(lambda c: c.list_approvals(org, status, limit)).approvals
        if as_json:
            emit(found, True, APPROVAL_COLUMNS)
            return
        table = Table(box=box.SIMPLE, pad_edge=False)
        table.add_column("id", no_wrap=True, min_width=FULL_ID)  # whole: the next command takes it
        table.add_column("status", no_wrap=True)
        table.add_column("age", no_wrap=True)
        table.add_column("request", overflow="fold", ratio=1)
        now = datetime.now(UTC)
        for a in found:
            status_word = APPROVAL_STATUS_NAMES.get(a.status, "")
            table.add_row(a.id, status_word, age(a.created_at.ToDatetime(tzinfo=UTC), now), _describe(a))
        console.print(table if found else f"No {status + ' ' if status else ''}approvals.")

    @approvals.command("show")
    def approvals_show(approval_id: str, as_json: bool = JSON) -> None:
        """One approval (the id or a unique prefix of it)."""

        async def run(c: PolicyClient) -> Approval:
            return await c.get_approval(await resolve_approval_id(c, approval_id))

        approval = call(run)
        if as_json:
            emit(approval, True, [])
        else:
            print_approval(approval)

    def _decide(approval_id: str, approve: bool, reason: str, as_json: bool) -> None:
        async def run(c: PolicyClient) -> Approval:
            return await c.decide_approval(await resolve_approval_id(c, approval_id, "pending"), approve, reason)

        decided = call(run)
        if as_json:
            emit(decided, True, [])
        elif approve:
            console.print(
                f"Approved {decided.id} ({_describe(decided)}). Its next call with the same arguments runs once."
            )
        else:
            console.print(f"Denied {decided.id} ({_describe(decided)}): {reason}")

    @approvals.command("approve")
    def approvals_approve(approval_id: str, as_json: bool = JSON) -> None:
        """Approve a pending request (the id or a unique prefix of it)."""
        _decide(approval_id, True, "", as_json)

    @approvals.command("deny")
    def approvals_deny(
        approval_id: str, reason: str = typer.Option(..., help="Shown to the caller."), as_json: bool = JSON
    ) -> None:
        """Deny a pending request (the id or a unique prefix of it), saying why."""
        _decide(approval_id, False, reason, as_json)

    @approvals.command("watch")
    def approvals_watch(org: str = ORG, as_json: bool = JSON) -> None:
        """The queue live: what is pending now, then every change as it happens (Ctrl-C stops)."""

        def line(a: Approval, now: datetime) -> str:
            if as_json:
                return json.dumps(to_dict(a))
            status = APPROVAL_STATUS_NAMES.get(a.status, "")
            extra = f" by {a.decided_by}" if a.decided_by else ""
            extra += f": {a.reason}" if a.reason else ""
            return f"{now:%H:%M:%S} {status:<8} {a.id} {_describe(a)}{extra}"

        async def run(c: PolicyClient) -> None:
            stream = c.watch_approvals(org)
            current = await c.list_approvals(org, "pending", 500)
            if not as_json:
                console.print(f"{len(current.approvals)} pending; watching for changes (Ctrl-C stops)")
            for approval in reversed(current.approvals):
                print(line(approval, datetime.now(UTC)), flush=True)
            async for approval in stream:
                print(line(approval, datetime.now(UTC)), flush=True)

        call_until_interrupted(run)

    def _query(  # type: ignore[no-untyped-def]
        org: str, since: str, toolkit: str, tool: str, status: str, source: str, limit: int, token: str = ""
    ):
        since_dt = _since(since)
        return call(
            lambda c: c.query_audit(
                org,
                since=since_dt,
                toolkit=toolkit,
                tool=tool,
                status=status,
                source=source,
                page_size=limit,
                page_token=token,
            )
        )

    @audit.command("list")
    def audit_list(
        org: str = ORG,
        since: str = SINCE,
        toolkit: str = TOOLKIT,
        tool: str = TOOL_FILTER,
        status: str = STATUS,
        source: str = SOURCE,
        limit: int = typer.Option(50, help="At most this many records"),
        as_json: bool = JSON,
    ) -> None:
        """The newest matching records (calls, and admin actions with where they came from)."""
        records = _query(org, since, toolkit, tool, status, source, limit).records
        emit(records, as_json, AUDIT_COLUMNS, cell_of=audit_cell)

    @audit.command("show")
    def audit_show(call_id: str, org: str = ORG, as_json: bool = JSON) -> None:
        """One record in full; for an admin action, the before/after of what it changed."""
        found = call(lambda c: c.query_audit(org, call_id=call_id, page_size=1)).records
        if not found:
            console.print(f"no audit record {call_id!r}")
            raise typer.Exit(1)
        record = found[0]
        change = change_of(record.method, record.response_json)
        if as_json:
            print(json.dumps(to_dict(record) | ({"change": change} if change is not None else {}), indent=2))
            return
        facts = Table(box=box.SIMPLE, show_header=False)
        facts.add_column("field", style="bold")
        facts.add_column("value", overflow="fold")
        for name in AUDIT_SHOW_FIELDS:
            if value := audit_cell(record, name):
                facts.add_row(name, Text(value))
        console.print(facts)
        if record.request_json:
            console.print("[bold]request[/bold]")
            console.print(Text(record.request_json))
        if change is None:
            if record.response_json:
                console.print("[bold]response[/bold]")
                console.print(Text(record.response_json))
            return
        table = Table(title=f"Change: {summary(change)}", box=box.SIMPLE)
        for column in ("field", "before", "after"):
            table.add_column(column, overflow="fold")
        for line in field_changes(change):
            # Text, not markup: stored values such as "[REDACTED]" are shown as they are.
            table.add_row(Text(line.field), Text(line.before), Text(line.after, style="bold" if line.changed else ""))
        console.print(table)

    @audit.command("export")
    def audit_export(
        org: str = ORG,
        since: str = SINCE,
        toolkit: str = TOOLKIT,
        tool: str = TOOL_FILTER,
        status: str = STATUS,
        source: str = SOURCE,
    ) -> None:
        """Every matching row as JSON Lines, newest first."""
        token = ""
        while True:
            page = _query(org, since, toolkit, tool, status, source, 500, token)
            for record in page.records:
                print(json.dumps(to_dict(record)))
            token = page.next_page_token
            if not token:
                break

    return audit
