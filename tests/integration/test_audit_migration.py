"""Migration 0009 on a populated database: every row kept, digests written before it still
verify, a call open across the upgrade completes once, and downgrade gives the rows back."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Table, insert, select

from policy_service.audit import chain, digests
from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.audit.sinks import Completion
from policy_service.audit.writer import AuditWriter, CallNotStarted, CompletionConflict
from policy_service.storage.database import WriteGuard, create_engine, is_sqlite, session_factory
from policy_service.storage.migrate import alembic_config, upgrade
from policy_service.storage.models import AuditDigest, AuditRequestLog
from tests.conftest import BACKENDS
from tests.support.migrations import database_at

LOG: Table = AuditRequestLog.__table__  # type: ignore[assignment]
DIGESTS: Table = AuditDigest.__table__  # type: ignore[assignment]
KEY = "migration-signing-key-" + "x" * 16
FIELDS = digests._CONTENT_FIELDS
UTC = dt.UTC


@pytest.fixture(params=BACKENDS)
async def url_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_at(request.param, tmp_path, "0008") as url:
        yield url


def _row(call_id: str, at: dt.datetime, **values: Any) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "org_slug": "acme",
        "toolkit_slug": "seo",
        "tool": "echo",
        "method": "tools/call",
        "request_payload": '{"text": "hi"}',
        "service_id": "svc",
        "status": "started",
        "created_at": at,
    } | values


def _done(call_id: str, at: dt.datetime) -> dict[str, Any]:
    return _row(uuid.uuid4().hex, at, completes=call_id, status="ok", request_payload="", completed_at=at)


async def _populate(url: str) -> None:
    """What a 0008 database holds: a call that completed in the next month, one interleaved
    with it, a call still open, and a signed digest over all of them."""
    sep30, oct1 = dt.datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC), dt.datetime(2026, 10, 1, 0, 0, 1, tzinfo=UTC)
    rows = [
        _row("a" * 32, sep30),
        _row("b" * 32, oct1),
        _done("b" * 32, oct1 + dt.timedelta(seconds=1)),
        _done("a" * 32, oct1 + dt.timedelta(seconds=2)),
        _row("e" * 32, dt.datetime.now(UTC) - dt.timedelta(minutes=10)),
        _done("e" * 32, dt.datetime.now(UTC) - dt.timedelta(minutes=9)),
        _row("c" * 32, dt.datetime.now(UTC) - dt.timedelta(minutes=5)),  # still running at the upgrade
        _row("d" * 32, dt.datetime.now(UTC), source="cli", method="admin/CreateApiKey", status="ok"),
    ]
    engine = create_engine(url)
    async with engine.begin() as conn:
        for row in rows:  # one by one: seq follows the list
            await conn.execute(insert(LOG).values(**row))
        found = (await conn.execute(select(LOG.c.seq, *(LOG.c[n] for n in FIELDS)).order_by(LOG.c.seq))).all()
        pairs = [(r.seq, digests.content_hash(SimpleNamespace(**r._mapping))) for r in found]  # type: ignore[arg-type]
        rows_sha = chain.rows_sha(pairs)
        link = chain.link_hash(chain.GENESIS, pairs[0][0], pairs[-1][0], len(pairs), rows_sha)
        await conn.execute(
            insert(DIGESTS).values(
                first_seq=pairs[0][0],
                last_seq=pairs[-1][0],
                row_count=len(pairs),
                rows_sha256=rows_sha,
                row_hashes=json.dumps(pairs),
                previous_digest=chain.GENESIS,
                digest=link,
                signature=chain.sign(KEY, link),
                created_at=dt.datetime.now(UTC),
            )
        )
    await engine.dispose()


async def _content(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        found = (await conn.execute(select(LOG.c.seq, *(LOG.c[n] for n in FIELDS)).order_by(LOG.c.seq))).all()
    await engine.dispose()
    return [tuple(r) for r in found]


async def _verify(url: str) -> digests.Verification:
    engine = create_engine(url)
    try:
        return await AuditDigester(session_factory(engine), DigestPolicy(signing_key=KEY)).verify()
    finally:
        await engine.dispose()


async def test_upgrade_keeps_every_row_and_the_chain_and_downgrade_gives_them_back(url_at_0008: str) -> None:
    url = url_at_0008
    await _populate(url)
    before = await _content(url)

    await asyncio.to_thread(upgrade, url)

    assert await _content(url) == before
    result = await _verify(url)
    assert result.ok and result.rows_checked == len(before), result.problems
    engine = create_engine(url)
    async with engine.connect() as conn:
        completion_of_a = (await conn.execute(select(LOG.c.call_at).where(LOG.c.completes == "a" * 32))).scalar_one()
    assert completion_of_a == dt.datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC)  # its call's time: its partition
    writer = AuditWriter(engine, WriteGuard(is_sqlite(url)))
    writer.start()
    try:
        now = dt.datetime.now(UTC)
        await writer.complete(Completion(uuid.uuid4().hex, "c" * 32, "svc", "{}", "[]", "ok", "", 1.0, now))
        with pytest.raises(CompletionConflict):  # completed before the upgrade: still only once
            await writer.complete(Completion(uuid.uuid4().hex, "e" * 32, "svc", "{}", "[]", "ok", "", 1.0, now))
        with pytest.raises(CallNotStarted):  # started more than a week ago (ADR 0022)
            await writer.complete(Completion(uuid.uuid4().hex, "a" * 32, "svc", "{}", "[]", "ok", "", 1.0, now))
    finally:
        await writer.stop()
        await engine.dispose()

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0008")
    assert (await _content(url))[: len(before)] == before
    await asyncio.to_thread(upgrade, url)
    assert (await _verify(url)).ok
