"""Fault test under load: while many clients call, kill -9 the policy service and the front
and terminate Postgres connections; then reconcile every call sent against the upstream's
executions and the audit log.

Needs MONOMCP_TEST_POSTGRES_URL. MONOMCP_FAULT_SECONDS (default 20) and
MONOMCP_FAULT_CLIENTS (default 50) size the run; `make soak` runs this same test longer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.storage.database import create_engine, session_factory
from tests.conftest import JWT_SECRET, OPERATOR, POSTGRES_URL
from tests.support.counting_upstream import RECORD, CountingUpstream
from tests.support.fault_load import CALL_TIMEOUT, OK, Ledger, raw_call, run_clients, warm_up
from tests.support.fault_stack import Stack, inject_faults, preapprove, process_env, running_stack
from tests.support.processes import throwaway_postgres
from tests.support.reconcile import AuditView, load_audit, reconcile

SECONDS = float(os.environ.get("MONOMCP_FAULT_SECONDS", "20"))
CLIENTS = int(os.environ.get("MONOMCP_FAULT_CLIENTS", "50"))
PERIOD = float(os.environ.get("MONOMCP_FAULT_PERIOD", "4"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason="MONOMCP_TEST_POSTGRES_URL not set"),
]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """Where the children's logs go (MONOMCP_FAULT_LOG_DIR keeps them after the run)."""
    path = Path(os.environ.get("MONOMCP_FAULT_LOG_DIR") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
async def stack(log_dir: Path) -> AsyncIterator[Stack]:
    async with throwaway_postgres(POSTGRES_URL) as database_url:
        env = process_env(database_url, OPERATOR, JWT_SECRET, digest_seconds=2.0)
        async with running_stack(database_url, CountingUpstream(), env, log_dir) as stack:
            yield stack


async def _sweep_and_digest(database_url: str) -> tuple[int, bool, list[str]]:
    """Marks every call left `started` abandoned, digests everything, verifies the chain."""
    engine = create_engine(database_url)
    try:
        digester = AuditDigester(
            session_factory(engine), DigestPolicy(abandon_after=dt.timedelta(0), settle=dt.timedelta(0))
        )
        abandoned = 0
        while swept := await digester.sweep_abandoned():
            abandoned += swept
        await digester.write_digest()
        verification = await digester.verify()
        return abandoned, verification.ok, verification.problems
    finally:
        await engine.dispose()


async def _settle(stack: Stack) -> tuple[AuditView, int, bool, list[str]]:
    """Stops both processes (nothing in flight), sweeps, digests and reads the audit log."""
    await stack.front.stop()
    await stack.policy.stop()
    abandoned, chain_ok, problems = await _sweep_and_digest(stack.database_url)
    engine = create_engine(stack.database_url)
    try:
        view = await load_audit(engine)
    finally:
        await engine.dispose()
    return view, abandoned, chain_ok, problems


async def test_calls_reconcile_with_the_audit_log_across_crashes(stack: Stack) -> None:
    ledger = Ledger()
    await preapprove(stack, ledger, count=max(50, int(SECONDS * CLIENTS / 4)))
    await warm_up(stack.target, ledger)
    clients = asyncio.create_task(run_clients(stack.target, ledger, SECONDS, CLIENTS))
    faults = await inject_faults(stack, SECONDS, PERIOD)
    await clients  # bounded: raises naming each client's pending step if one hangs
    view, abandoned, chain_ok, problems = await _settle(stack)
    report = reconcile(ledger, stack.upstream.executions, view, abandoned)
    print(f"\nfault run: {SECONDS:g} s, {CLIENTS} clients; {faults.summary()}\n{report.summary()}")
    print(f"failures: {report.failure_details.most_common(6)}")

    assert ledger.stalled == [], "SDK sessions that neither opened/closed nor failed in time"

    assert faults.counts["policy"] and faults.counts["front"] and faults.counts["postgres"]
    assert report.succeeded > 0 and report.executed > 0
    assert report.executed_without_row == [], "executed calls without a started row"
    assert report.double_executions == [], "ids executed more than once"
    assert report.unapproved_executed == [], "needs_approval calls ran without an approval"
    assert report.approval_violations == []
    assert report.rows_lost == []
    assert chain_ok, problems
    assert report.acknowledged_unrecorded == [], "successes the audit log does not hold as ok"


async def test_a_success_reaches_the_client_only_with_its_completion_row(stack: Stack) -> None:
    """The policy service dies while the backend runs the call; the client must not see a
    success the audit log does not hold (DESIGN: response only after the completion is durable)."""
    ledger = Ledger()
    await warm_up(stack.target, ledger)
    stack.upstream.hold()
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        call = asyncio.create_task(raw_call(http, stack.target, RECORD, "held"))
        await asyncio.wait_for(stack.upstream.arrived.wait(), 30)
        await stack.policy.kill9()
        restart = asyncio.create_task(stack.policy.start())
        stack.upstream.release()
        outcome = await call
        await restart
    view, _, _, _ = await _settle(stack)
    key = (RECORD, "held")
    assert stack.upstream.executions[key] == 1
    assert len(view.started_by_key[key]) == 1, "the call ran, so its started row must exist"
    statuses = view.completions[view.started_by_key[key][0]]
    assert outcome.kind != OK or statuses == ["ok"]


async def test_a_backend_crash_mid_response_does_not_run_the_call_twice(stack: Stack) -> None:
    """The backend runs the call and drops the connection before answering: the front may
    report an error, but must not send the call again (tools are not idempotent)."""
    ledger = Ledger()
    await warm_up(stack.target, ledger)  # leaves a pooled keep-alive connection to the backend
    stack.upstream.crash_after_executing.add("crash")
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        await raw_call(http, stack.target, RECORD, "crash")
    executions = stack.upstream.executions[(RECORD, "crash")]
    assert executions == 1
