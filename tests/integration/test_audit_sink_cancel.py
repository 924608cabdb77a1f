"""The SQLite audit sink keeps the WriteGuard while its thread writes a batch whose writer was
cancelled (at stop): released early, the next writer of the process would meet the thread's
open transaction in SQLite's busy handler instead of queueing on the guard (ADR 0042). A
stuck thread still cannot hold stop: the wait is bounded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.audit.sinks import Completed, Completion, SqlSink
from policy_service.audit.writer import full_row
from policy_service.storage.database import WriteGuard, create_engine
from policy_service.storage.models import new_id, utcnow

# Fails the test instead of hanging it (no timing is asserted).
_STUCK = 30.0


@dataclass
class Gate:
    """Holds the sink's thread inside its write (before the database) until opened."""

    entered: threading.Event = field(default_factory=threading.Event)
    proceed: threading.Event = field(default_factory=threading.Event)
    in_write: bool = False


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate()
    original = SqlSink._write

    def write(self: SqlSink, rows: list[dict[str, Any]], completions: list[Completion]) -> list[Completed]:
        held.in_write = True
        held.entered.set()
        try:
            held.proceed.wait(_STUCK)
            return original(self, rows, completions)
        finally:
            held.in_write = False

    monkeypatch.setattr(SqlSink, "_write", write)
    yield held
    held.proceed.set()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite sink")
    made = create_engine(database_url)
    yield made
    await made.dispose()


def _row() -> dict[str, Any]:
    return full_row({"call_id": new_id(), "status": "ok", "tool": "t", "org_slug": "acme", "created_at": utcnow()})


async def _count(engine: AsyncEngine, call_id: str) -> int:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM audit_request_logs WHERE call_id = :v")
        return int((await conn.execute(query, {"v": call_id})).scalar_one())


async def test_a_cancelled_batch_keeps_the_guard_until_its_thread_is_done(engine: AsyncEngine, gate: Gate) -> None:
    guard = WriteGuard(True)
    sink = SqlSink(engine, guard)
    row = _row()
    commit = asyncio.ensure_future(sink.commit([row], []))
    assert await asyncio.to_thread(gate.entered.wait, _STUCK)
    commit.cancel()
    thread_was_writing: list[bool] = []

    async def next_writer() -> None:
        async with guard():
            thread_was_writing.append(gate.in_write)

    waiter = asyncio.ensure_future(next_writer())
    # Old code handed the guard on at once; give it every chance to (no timing asserted).
    await asyncio.wait((waiter,), timeout=1.0)
    gate.proceed.set()
    await asyncio.wait_for(waiter, _STUCK)
    with pytest.raises(asyncio.CancelledError):
        await commit
    assert thread_was_writing == [False]  # the next writer got the guard only after the thread
    assert await _count(engine, row["call_id"]) == 1  # the cancelled batch was written all the same
    await sink.close()


async def test_a_stuck_thread_does_not_hold_stop(engine: AsyncEngine, gate: Gate) -> None:
    guard = WriteGuard(True)
    sink = SqlSink(engine, guard)
    sink.cancelled_wait = 0.05
    row = _row()
    commit = asyncio.ensure_future(sink.commit([row], []))
    assert await asyncio.to_thread(gate.entered.wait, _STUCK)
    commit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(commit, _STUCK)  # gives up waiting for the thread, bounded
    async with guard():  # and hands the guard on
        assert gate.in_write
    gate.proceed.set()
    await sink.close()
    assert await _count(engine, row["call_id"]) == 1
