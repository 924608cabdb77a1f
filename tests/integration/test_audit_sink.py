"""The audit log's two statement shapes answer alike: a batch of one (every commit at c=1,
one-row VALUES on Postgres) and a batch of many (arrays) store the same rows and tell a
completion's three outcomes apart the same way (ADR 0034)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from sqlalchemy import text

from policy_service.audit.sink_postgres import PostgresSink
from policy_service.audit.sinks import COLUMNS, Completion
from policy_service.audit.writer import AuditLog, CallNotStarted, CompletionConflict, full_row
from policy_service.config import Settings
from policy_service.storage.database import is_sqlite, session_factory
from policy_service.storage.models import new_id, utcnow

_FACTS = "tool, org_slug, toolkit_slug, actor_id, service_id, call_at"


def _started(tool: str) -> dict[str, Any]:
    return {
        "call_id": new_id(),
        "status": "started",
        "tool": tool,
        "org_slug": "acme",
        "toolkit_slug": "tools",
        "actor_id": "k1",
        "service_id": "front",
        "request_payload": '{"name": "é\x00"}',
        "created_at": utcnow(),
    }


def _completion(call_id: str, service: str = "front") -> Completion:
    return Completion(new_id(), call_id, service, '{"content": []}', "[]", "ok", "", 1.5, utcnow())


async def _outcome(audit: AuditLog, completion: Completion) -> str:
    try:
        await audit.complete(completion)
    except CompletionConflict:
        return "conflict"
    except CallNotStarted:
        return "not started"
    return "ok"


async def _stored(engine: Any, call_ids: list[str]) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """Per call: its started row's facts and request, and its completion rows (facts, outcome)."""
    started = f"SELECT {_FACTS}, request_payload FROM audit_request_logs WHERE call_id = :id"
    done = f"SELECT {_FACTS}, status, response_payload, duration_ms FROM audit_request_logs WHERE completes = :id"
    out = []
    async with engine.connect() as conn:
        for call_id in call_ids:
            call = tuple((await conn.execute(text(started), {"id": call_id})).one())
            completions = [tuple(r) for r in (await conn.execute(text(done), {"id": call_id})).all()]
            out.append((call, completions))
    return out


async def test_a_batch_of_one_and_a_batch_of_many_store_and_answer_alike(log: tuple[AuditLog, Any]) -> None:
    audit, engine = log
    # One at a time: every commit is a batch of one.
    alone = [_started(f"alone{i}") for i in range(3)]
    for row in alone:
        await audit.insert(row)
    # All at once: they share one commit.
    together = [_started(f"together{i}") for i in range(3)]
    await asyncio.gather(*(audit.insert(row) for row in together))

    def attempts(rows: list[dict[str, Any]]) -> list[Completion]:
        first, second, third = (r["call_id"] for r in rows)
        return [
            _completion(first),
            _completion(first),  # completed twice
            _completion(second, service="another-front"),  # not the service allowed to run it
            _completion(new_id()),  # never started
            _completion(new_id() + new_id()),  # longer than any call id
            # No call has this id (a varchar(32) would cut its blanks off): it completes nothing.
            Completion(new_id(), third + "  ", "front", "{}", "[]", "error", "", 1.5, utcnow()),
            _completion(third),
        ]

    one_by_one = [await _outcome(audit, c) for c in attempts(alone)]
    batched = await asyncio.gather(*(_outcome(audit, c) for c in attempts(together)))
    assert one_by_one == ["ok", "conflict", "not started", "not started", "not started", "not started", "ok"]
    assert list(batched) == one_by_one

    for rows in (alone, together):
        stored = await _stored(engine, [r["call_id"] for r in rows])
        for (call, completions), completed in zip(stored, (True, False, True), strict=True):
            facts, request = call[:-1], call[-1]
            assert request == '{"name": "é\\u0000"}'  # NUL escaped, whatever the batch
            # A completion copies its call's facts, call_at (its partition) included; once only.
            assert completions == ([(*facts, "ok", '{"content": []}', 1.5)] if completed else [])


async def test_a_row_at_fault_fails_alone_and_the_log_writes_on(log: tuple[AuditLog, Any]) -> None:
    """A batch that fails is rolled back whole and retried row by row: only the row at fault
    (here one without the status every row must have) fails, and the sink goes on writing."""
    audit, engine = log
    faulty = {k: v for k, v in _started("faulty").items() if k != "status"}
    fine = [_started(f"fine{i}") for i in range(3)]
    results = await asyncio.gather(*(audit.insert(row) for row in [*fine[:2], faulty, fine[2]]), return_exceptions=True)
    assert [isinstance(r, Exception) for r in results] == [False, False, True, False]
    await audit.insert(after := _started("after"))
    assert await _outcome(audit, _completion(fine[0]["call_id"])) == "ok"
    stored = await _stored(engine, [r["call_id"] for r in (*fine, after)])
    assert [call[0] for call, _ in stored] == ["fine0", "fine1", "fine2", "after"]
    async with engine.connect() as conn:
        count = f"SELECT count(*) FROM audit_request_logs WHERE call_id = '{faulty['call_id']}'"
        assert (await conn.execute(text(count))).scalar_one() == 0


async def test_sqlite_rows_are_stored_as_sqlalchemy_stores_them(log: tuple[AuditLog, Any], settings: Settings) -> None:
    """The SQLite sink writes its own SQL on its own connection (ADR 0042); a row it stores is
    the row SQLAlchemy Core stores for the same values (an approval's row still goes that way):
    the same text for times (which SQLite compares as text), the same storage class per column."""
    if not is_sqlite(settings.database_url):
        pytest.skip("the SQLite sink")
    audit, engine = log
    east = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    values = _started("same") | {
        "created_at": datetime.datetime(2026, 11, 26, 9, 15, 30, 12, tzinfo=east),
        "duration_ms": 2,  # an int: stored as REAL either way
        "actor_display": "Zoë ✓",
        "trace_id": "t" * 32,
    }
    by_sink, by_core = values | {"call_id": new_id()}, values | {"call_id": new_id()}
    await audit.insert(by_sink)
    async with session_factory(engine)() as session, session.begin():
        await AuditLog.stage(session, by_core)
    columns = [c for c in COLUMNS if c != "call_id"]
    select = ", ".join(f"{c}, typeof({c})" for c in columns)
    async with engine.connect() as conn:
        rows = [
            tuple(
                (
                    await conn.execute(text(f"SELECT {select} FROM audit_request_logs WHERE call_id = :id"), {"id": i})
                ).one()
            )
            for i in (by_sink["call_id"], by_core["call_id"])
        ]
    assert rows[0] == rows[1]
    assert rows[0][2 * columns.index("created_at")] == "2026-11-26 03:45:30.000012"


async def test_postgres_batches_of_many_write_on_after_a_column_is_added(
    log: tuple[AuditLog, Any], settings: Settings
) -> None:
    """A migration that adds a column to the audit table while the service runs (a rolling
    upgrade) must not make every later batch of many fail: the array of table rows is encoded
    with the row type's layout asyncpg cached, which then no longer matches."""
    if is_sqlite(settings.database_url):
        pytest.skip("Postgres sink")
    _, engine = log

    def rows(*tools: str) -> list[dict[str, Any]]:
        return [full_row(_started(tool)) for tool in tools]

    sink = PostgresSink(engine.url)
    try:
        await sink.commit(before := rows("before0", "before1"), [])
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE audit_request_logs ADD COLUMN added_later text"))
        completions = [_completion(r["call_id"]) for r in before]
        failures = 0
        for batch, done in ((rows("after0", "after1"), []), ([], completions), (rows("after2", "after3"), [])):
            try:
                await sink.commit(batch, done)
            except Exception:
                failures += 1
        assert failures <= 1  # the batch that meets the change at most (the writer retries its rows alone)
        await sink.commit(again := rows("again0", "again1"), [])
        stored = await _stored(engine, [r["call_id"] for r in again])
        assert [call[0] for call, _ in stored] == ["again0", "again1"]
    finally:
        await sink.close()
