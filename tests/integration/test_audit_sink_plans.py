"""The Postgres audit sink plans its statements once per connection (generic plans), and calls
are still started, completed once, refused a second completion and not found when unknown."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
from sqlalchemy.engine import make_url

from policy_service.audit.sink_postgres import _COMPLETE_ONE, PostgresSink
from policy_service.audit.sinks import COLUMNS, Completed, Completion
from tests.conftest import World


def _started(call_id: str, at: dt.datetime) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(COLUMNS, "")
    row.update(
        call_id=call_id,
        status="started",
        service_id="svc",
        org_slug="acme",
        method="tools/call",
        redacted_paths="[]",
        duration_ms=1.0,
        created_at=at,
        call_at=at,
        completed_at=None,
    )
    return row


def _completion(completes: str, at: dt.datetime) -> Completion:
    return Completion(secrets.token_hex(16), completes, "svc", "{}", "[]", "ok", "", 1.0, at)


async def test_completions_on_generic_plans(world: World, database_url: str) -> None:
    """Regression: the completion INSERT…SELECT was re-planned per batch under `auto` plan
    caching, and that planning grew with the audit log (CPU per call not flat at 10M rows)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("Postgres sink")
    sink = PostgresSink(make_url(database_url))
    try:
        at = dt.datetime.now(dt.UTC)
        calls = [secrets.token_hex(16) for _ in range(7)]  # past 5 executions: when `auto` would pick
        for call_id in calls:
            assert await sink.commit([_started(call_id, at)], [_completion(call_id, at)]) == [Completed.OK]
        again = await sink.commit([], [_completion(calls[0], at), _completion("unknown-call", at)])
        assert again == [Completed.CONFLICT, Completed.NOT_FOUND]
        conn = await sink._connection()
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
    finally:
        await sink.close()


async def test_a_batch_of_completions_takes_call_ids_as_sent(world: World, database_url: str) -> None:
    """A batch's completions travel as table rows (ADR 0039), but the id each one names is
    compared as sent: one no column could hold is simply not started, and the batch commits."""
    if not database_url.startswith("postgresql"):
        pytest.skip("Postgres sink")
    sink = PostgresSink(make_url(database_url))
    try:
        at = dt.datetime.now(dt.UTC)
        call_id = secrets.token_hex(16)
        await sink.commit([_started(call_id, at)], [])
        batch = [_completion(call_id + "  ", at), _completion(call_id * 2, at), _completion(call_id, at)]
        assert await sink.commit([], batch) == [Completed.NOT_FOUND, Completed.NOT_FOUND, Completed.OK]
    finally:
        await sink.close()


async def test_a_completion_finds_its_call_by_index_whatever_the_statistics(world: World, database_url: str) -> None:
    """Regression: with statistics taken while the month's partition was empty and never again
    (autovacuum off), the plan cached by the sink seq-scanned the partition for every completion: 5–7 ms per completion
    and ~167 ms per batch of 32 once a bench had written a few thousand rows. The sink's
    statements must look a call up by its unique index whatever the planner believes."""
    if not database_url.startswith("postgresql"):
        pytest.skip("Postgres sink")
    sink = PostgresSink(make_url(database_url))
    try:
        conn = await sink._connection()
        await conn.execute("TRUNCATE audit_request_logs")
        await conn.execute("ANALYZE audit_request_logs")  # the statistics say: empty
        at = dt.datetime.now(dt.UTC)
        calls = [secrets.token_hex(16) for _ in range(500)]
        assert await sink.commit([_started(c, at) for c in calls], []) == []
        call_id = calls[-1]
        plan = await (await conn.prepare(_COMPLETE_ONE)).explain(
            secrets.token_hex(16), call_id, "svc", "{}", "[]", "ok", "", 1.0, at.replace(tzinfo=None)
        )
        text = json.dumps(plan)
        assert "Seq Scan" not in text, text
        assert "Index Scan" in text or "Index Only Scan" in text, text
    finally:
        await sink.close()
