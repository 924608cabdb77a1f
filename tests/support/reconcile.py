"""Reconciles what clients sent and saw, what the upstream executed, and what the audit log
and the approval queue hold, after a fault run. Reads the database directly (read-only), so
the numbers do not depend on the code under test folding rows correctly."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.counting_upstream import TRANSFER
from tests.support.fault_load import OK, PENDING, Ledger

Key = tuple[str, str]  # (tool, unique id argument)


@dataclass
class AuditView:
    """The tools/call rows, keyed by the unique id each call carried."""

    started: dict[str, Key] = field(default_factory=dict)  # call_id -> key
    started_by_key: dict[Key, list[str]] = field(default_factory=lambda: defaultdict(list))
    completions: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # completes -> statuses
    pending_keys: set[Key] = field(default_factory=set)
    consumed_approvals: dict[str, str] = field(default_factory=dict)  # approval id -> consuming call_id
    started_approval: dict[str, str] = field(default_factory=dict)  # call_id -> approval id
    rows: int = 0


def _key(tool: str, payload: str) -> Key | None:
    try:
        arguments = json.loads(payload).get("arguments") or {}
    except (ValueError, AttributeError):
        return None
    call_id = arguments.get("id")
    return (tool, call_id) if isinstance(call_id, str) else None


async def load_audit(engine: AsyncEngine) -> AuditView:
    view = AuditView()
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT call_id, completes, tool, status, approval_id, request_payload "
                "FROM audit_request_logs WHERE method = 'tools/call' ORDER BY seq"
            )
        )
        for call_id, completes, tool, status, approval_id, payload in rows:
            view.rows += 1
            if completes:
                view.completions[completes].append(status)
                continue
            key = _key(tool, payload)
            if key is None:
                continue
            if status == "started":
                view.started[call_id] = key
                view.started_by_key[key].append(call_id)
                if approval_id:
                    view.started_approval[call_id] = approval_id
            elif status == "pending_approval":
                view.pending_keys.add(key)
        approvals = await conn.execute(text("SELECT id, consumed_by_call_id FROM approvals WHERE status = 'consumed'"))
        view.consumed_approvals = {approval_id: call_id for approval_id, call_id in approvals}
    return view


@dataclass
class Report:
    calls_sent: int = 0
    succeeded: int = 0
    succeeded_via_sdk: int = 0
    pending: int = 0
    pending_for_approved: int = 0
    failed: int = 0  # JSON-RPC errors, transport errors and unexpected error results
    failed_by_kind: Counter[str] = field(default_factory=Counter)
    failure_details: Counter[str] = field(default_factory=Counter)
    executed: int = 0
    rows: int = 0
    started_rows: int = 0
    abandoned: int = 0
    executed_without_row: list[Key] = field(default_factory=list)
    acknowledged_unrecorded: list[Key] = field(default_factory=list)  # client saw success, no ok completion
    rows_lost: list[str] = field(default_factory=list)
    double_executions: list[Key] = field(default_factory=list)
    approval_violations: list[str] = field(default_factory=list)
    unapproved_executed: list[Key] = field(default_factory=list)
    approvals_consumed: int = 0

    def summary(self) -> str:
        return (
            f"calls sent={self.calls_sent} succeeded={self.succeeded} (sdk {self.succeeded_via_sdk}) "
            f"pending={self.pending} (for approved ids {self.pending_for_approved}) "
            f"failed={self.failed} {dict(self.failed_by_kind)} executed={self.executed} rows={self.rows} "
            f"started={self.started_rows} abandoned={self.abandoned} approvals_consumed={self.approvals_consumed} | "
            f"executed_without_row={len(self.executed_without_row)} "
            f"acknowledged_unrecorded={len(self.acknowledged_unrecorded)} rows_lost={len(self.rows_lost)} "
            f"double_executions={len(self.double_executions)} approval_violations={len(self.approval_violations)} "
            f"unapproved_executed={len(self.unapproved_executed)}"
        )


def _count_outcomes(report: Report, ledger: Ledger) -> None:
    report.calls_sent = len(ledger.outcomes)
    for outcome in ledger.outcomes:
        if outcome.kind == OK:
            report.succeeded += 1
            report.succeeded_via_sdk += outcome.via == "sdk"
        elif outcome.kind == PENDING:
            report.pending += 1
            # A pre-approved id answered "needs approval": the racing copy that lost made a new request.
            report.pending_for_approved += outcome.id not in ledger.unapproved
        else:
            report.failed += 1
            report.failed_by_kind[outcome.kind] += 1
            report.failure_details[f"{outcome.kind}: {outcome.detail[:60]}"] += 1


def _final_status(view: AuditView, key: Key) -> list[str]:
    return [status for call_id in view.started_by_key.get(key, []) for status in view.completions.get(call_id, [])]


def _check_rows(report: Report, ledger: Ledger, view: AuditView) -> None:
    for outcome in ledger.outcomes:
        key = (outcome.tool, outcome.id)
        if outcome.kind == OK and "ok" not in _final_status(view, key):
            report.acknowledged_unrecorded.append(key)
        if outcome.kind == PENDING and key not in view.pending_keys:
            report.rows_lost.append(f"{key}: pending answer without a pending_approval row")
    for call_id in view.started:
        if len(view.completions.get(call_id, [])) != 1:
            report.rows_lost.append(f"started {call_id}: {view.completions.get(call_id, [])} completions after sweep")
    for completes in view.completions:
        if completes not in view.started:
            report.rows_lost.append(f"completion for {completes} without its started row")


def _check_approvals(report: Report, view: AuditView, executions: Counter[Key], ledger: Ledger) -> None:
    report.approvals_consumed = len(view.consumed_approvals)
    by_approval: dict[str, list[str]] = defaultdict(list)
    for call_id, approval_id in view.started_approval.items():
        by_approval[approval_id].append(call_id)
    for approval_id, call_ids in by_approval.items():
        if len(call_ids) != 1 or view.consumed_approvals.get(approval_id) != call_ids[0]:
            report.approval_violations.append(f"approval {approval_id}: started calls {call_ids}")
    for approval_id, call_id in view.consumed_approvals.items():
        if call_id not in view.started:
            report.approval_violations.append(f"approval {approval_id} consumed by {call_id}, which has no row")
    for key in executions:
        if key[0] == TRANSFER and key[1] not in ledger.unapproved:
            started = view.started_by_key.get(key, [])
            if not any(view.started_approval.get(c) for c in started):
                report.approval_violations.append(f"{key} executed without a consumed approval")
        if key[0] == TRANSFER and key[1] in ledger.unapproved:
            report.unapproved_executed.append(key)


def reconcile(ledger: Ledger, executions: Counter[Key], view: AuditView, abandoned: int) -> Report:
    report = Report(rows=view.rows, started_rows=len(view.started), abandoned=abandoned)
    _count_outcomes(report, ledger)
    report.executed = sum(executions.values())
    for key, count in executions.items():
        if not view.started_by_key.get(key):
            report.executed_without_row.append(key)
        if count > 1:
            report.double_executions.append(key)
    _check_rows(report, ledger, view)
    _check_approvals(report, view, executions, ledger)
    return report
