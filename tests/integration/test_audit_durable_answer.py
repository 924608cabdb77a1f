"""The audit log answers a row only once the batch holding it has committed (DESIGN: a tool
never runs before its row is durable): a batch held before it reaches the database leaves its
row unanswered and invisible, and rows queued behind it wait for it (ADR 0041 measured letting
a second batch overtake it, and kept one batch at a time)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text

from policy_service.audit.sink_postgres import PostgresSink
from policy_service.audit.sinks import Completion, SqlSink
from policy_service.audit.writer import AuditLog
from policy_service.config import Settings
from policy_service.storage.database import is_sqlite
from policy_service.storage.models import new_id, utcnow

# Fails the test instead of hanging it when a batch never gets its turn (no timing is asserted).
_STUCK = 30.0


@dataclass
class Hold:
    """Holds the next batch the sink is given before it touches the database, until released."""

    armed: bool = True
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def hold(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    sink: Any = SqlSink if is_sqlite(settings.database_url) else PostgresSink
    original = sink.commit
    held = Hold()

    async def commit(self: Any, rows: list[dict[str, Any]], completions: list[Completion]) -> Any:
        if held.armed:
            held.armed = False
            held.entered.set()
            await held.release.wait()
        return await original(self, rows, completions)

    monkeypatch.setattr(sink, "commit", commit)
    yield held
    held.release.set()


def _started() -> dict[str, Any]:
    return {
        "call_id": new_id(),
        "status": "started",
        "tool": "t",
        "org_slug": "acme",
        "toolkit_slug": "tools",
        "actor_id": "k1",
        "service_id": "front",
        "request_payload": "{}",
        "created_at": utcnow(),
    }


async def _rows(engine: Any, column: str, value: str) -> int:
    async with engine.connect() as conn:
        query = text(f"SELECT count(*) FROM audit_request_logs WHERE {column} = :v")
        return int((await conn.execute(query, {"v": value})).scalar_one())


async def test_a_row_is_answered_only_once_its_own_batch_is_durable(log: tuple[AuditLog, Any], hold: Hold) -> None:
    audit, engine = log
    first = _started()
    waiting = asyncio.ensure_future(audit.insert(first))
    await asyncio.wait_for(hold.entered.wait(), _STUCK)
    second = _started()
    later = asyncio.ensure_future(audit.insert(second))
    await asyncio.sleep(0)  # let the writer look at its queue while the first batch is held
    assert not waiting.done() and not later.done()
    assert await _rows(engine, "call_id", first["call_id"]) == 0
    hold.release.set()
    await asyncio.wait_for(asyncio.gather(waiting, later), _STUCK)
    assert await _rows(engine, "call_id", first["call_id"]) == 1
    assert await _rows(engine, "call_id", second["call_id"]) == 1
