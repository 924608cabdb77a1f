"""Fault test under load: while many clients call, kill -9 the policy service and the front
and terminate Postgres connections; then reconcile every call sent against the upstream's
executions and the audit log.

Needs MONOMCP_TEST_POSTGRES_URL. MONOMCP_FAULT_SECONDS (default 20) and
MONOMCP_FAULT_CLIENTS (default 50) size the run; `make soak` runs this same test longer.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.client import PolicyClient
from policy_service.storage.database import create_engine, session_factory
from tests.conftest import JWT_SECRET, OPERATOR, POSTGRES_URL
from tests.support.counting_upstream import CountingUpstream
from tests.support.fault_load import Ledger, run_clients, warm_up
from tests.support.fault_stack import Stack, inject_faults, make_processes, preapprove, process_env, seed
from tests.support.processes import throwaway_postgres
from tests.support.reconcile import Report, load_audit, reconcile
from tests.support.servers import serve_asgi

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
        upstream = CountingUpstream()
        async with serve_asgi(upstream.app()) as upstream_base:
            env = process_env(database_url, OPERATOR, JWT_SECRET, digest_seconds=2.0)
            policy, front = make_processes(env, log_dir)
            await policy.start()
            operator = PolicyClient(policy.address, OPERATOR)
            stack = Stack(database_url, upstream, policy, front, operator)
            try:
                await seed(stack, f"{upstream_base}/mcp")
                front.set_env("MONOMCP_SERVICE_TOKEN", stack.service_token)
                await front.start()
                yield stack
            finally:
                await operator.close()
                await front.stop()
                await policy.stop()


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


async def _reconcile(stack: Stack, ledger: Ledger, abandoned: int) -> Report:
    engine = create_engine(stack.database_url)
    try:
        view = await load_audit(engine)
    finally:
        await engine.dispose()
    return reconcile(ledger, stack.upstream.executions, view, abandoned)


async def test_calls_reconcile_with_the_audit_log_across_crashes(stack: Stack) -> None:
    import asyncio

    ledger = Ledger()
    await preapprove(stack, ledger, count=max(50, int(SECONDS * CLIENTS / 4)))
    await warm_up(stack.target, ledger)
    clients = asyncio.create_task(run_clients(stack.target, ledger, SECONDS, CLIENTS))
    faults = await inject_faults(stack, SECONDS, PERIOD)
    await clients
    await stack.front.stop()  # nothing in flight while the log is swept and read
    await stack.policy.stop()
    abandoned, chain_ok, problems = await _sweep_and_digest(stack.database_url)
    report = await _reconcile(stack, ledger, abandoned)
    print(f"\nfault run: {SECONDS:g} s, {CLIENTS} clients; {faults.summary()}\n{report.summary()}")
    print(report.failure_details.most_common(8))

    assert faults.counts["policy"] and faults.counts["front"] and faults.counts["postgres"]
    assert report.succeeded > 0 and report.executed > 0
    assert report.executed_without_row == [], "executed calls without a started row"
    assert report.double_executions == [], "ids executed more than once"
    assert report.unapproved_executed == [], "needs_approval calls ran without an approval"
    assert report.approval_violations == []
    assert report.rows_lost == []
    assert chain_ok, problems
    if report.acknowledged_unrecorded:
        pytest.xfail(
            f"{len(report.acknowledged_unrecorded)} responses reached clients as success without an ok "
            "completion row: mcp_front/mcp/calls.py ToolCaller.execute returns the result when "
            "CompleteToolCall fails (policy service killed mid-call)"
        )
