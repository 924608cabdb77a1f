"""Retention by whole partitions (ADR 0022): the rows of old calls go, the digest chain still
verifies from an anchor that lists the rows its range kept, and tampering with those rows is
still caught. On Postgres the old month is a partition that is dropped, not deleted from."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.audit import partitions
from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.config import Settings
from policy_service.storage.database import create_engine, session_factory
from tests.conftest import World

KEY = "k" * 32
OLD_MONTH = dt.datetime(2020, 1, 1)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url)
    yield engine
    await engine.dispose()


def digester(engine: AsyncEngine) -> AuditDigester:
    policy = DigestPolicy(settle=dt.timedelta(0), signing_key=KEY, retention=True, stale_after=dt.timedelta(days=36500))
    return AuditDigester(session_factory(engine), policy)


async def _interleaved_calls(world: World) -> tuple[str, str]:
    """An old call whose completion comes after a newer call's rows: one digest holds both."""
    async with world.service() as front:
        key = world.keys["acme:member"]
        old = await front.authorize_tool_call(key, "acme", "tools", "echo", '{"text": "old"}')
        new = await front.authorize_tool_call(key, "acme", "tools", "echo", '{"text": "new"}')
        await front.complete_tool_call(new.call_id, "ok", '{"content": []}')
        await front.complete_tool_call(old.call_id, "ok", '{"content": []}')
    return old.call_id, new.call_id


async def _seqs(engine: AsyncEngine, call_id: str) -> list[int]:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT seq FROM audit_request_logs WHERE call_id = :c OR completes = :c ORDER BY seq"), {"c": call_id}
        )
        return [int(s) for s in found.scalars()]


async def test_retention_drops_old_calls_and_the_chain_verifies_from_the_anchor(
    world: World, engine: AsyncEngine
) -> None:
    audit = digester(engine)
    old, new = await _interleaved_calls(world)
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # the old call's month exists as a partition
            await conn.execute(text(partitions.create_partition_sql(OLD_MONTH)))
        await conn.execute(
            text("UPDATE audit_request_logs SET call_at = '2020-01-15 00:00:00' WHERE call_id = :c OR completes = :c"),
            {"c": old},
        )
    old_seqs, new_seqs = await _seqs(engine, old), await _seqs(engine, new)
    assert old_seqs[0] < new_seqs[0] < old_seqs[1]  # the digest straddles the boundary
    assert await audit.write_digest() is not None

    pruned = await audit.prune(dt.datetime(2020, 2, 15, tzinfo=dt.UTC))

    assert pruned.rows == 2 and await _seqs(engine, old) == []
    if engine.dialect.name == "postgresql":
        assert pruned.partitions == ["audit_request_logs_p2020_01"]
    assert (await audit.links())[0].is_anchor and pruned.anchor_seq >= new_seqs[-1]
    result = await audit.verify()
    assert result.ok, result.problems
    # The chain goes on from the anchor.
    await _interleaved_calls(world)
    assert await audit.write_digest() is not None
    assert (await audit.verify()).ok


async def test_a_row_kept_under_an_anchor_is_still_protected(world: World, engine: AsyncEngine) -> None:
    audit = digester(engine)
    old, new = await _interleaved_calls(world)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_request_logs SET call_at = '2019-06-01 00:00:00' WHERE call_id = :c OR completes = :c"),
            {"c": old},
        )
    await audit.write_digest()
    assert (await audit.prune(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))).rows == 2
    kept = await _seqs(engine, new)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_request_logs SET error = 'rewritten' WHERE seq = :s"), {"s": kept[0]})
        await conn.execute(text("DELETE FROM audit_request_logs WHERE seq = :s"), {"s": kept[1]})
    problems = "\n".join((await audit.verify()).problems)
    assert f"row {kept[0]} edited" in problems and f"row {kept[1]} deleted" in problems


async def test_undigested_rows_are_never_removed(world: World, engine: AsyncEngine) -> None:
    audit = digester(engine)
    old, _ = await _interleaved_calls(world)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_request_logs SET call_at = '2019-06-01 00:00:00' WHERE call_id = :c OR completes = :c"),
            {"c": old},
        )
    pruned = await audit.prune(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert pruned.rows == 0 and "not digested" in pruned.reason
    assert len(await _seqs(engine, old)) == 2


async def test_partitions_are_created_ahead_on_postgres(world: World, engine: AsyncEngine) -> None:
    created = await digester(engine).prepare_partitions(ahead=14)
    async with session_factory(engine)() as session:
        listed = await partitions.list_partitions(session)
    if engine.dialect.name != "postgresql":
        assert created == [] and listed == []
        return
    assert len(created) >= 10  # the migration made this month and three ahead
    months = [p.start for p in listed if p.start is not None]
    assert months == sorted(months) and len(months) >= 15
    assert listed[-1].name == partitions.DEFAULT


async def test_a_call_can_be_completed_for_a_week_after_it_started(world: World, engine: AsyncEngine) -> None:
    async with world.service() as front:
        key = world.keys["acme:member"]
        fresh = await front.authorize_tool_call(key, "acme", "tools", "echo", '{"text": "fresh"}')
        stale = await front.authorize_tool_call(key, "acme", "tools", "echo", '{"text": "stale"}')
        async with engine.begin() as conn:  # the completion's lookup reads only the last week's partitions
            await conn.execute(
                text("UPDATE audit_request_logs SET call_at = call_at - interval '8 days' WHERE call_id = :c")
                if engine.dialect.name == "postgresql"
                else text("UPDATE audit_request_logs SET call_at = datetime(call_at, '-8 days') WHERE call_id = :c"),
                {"c": stale.call_id},
            )
        await front.complete_tool_call(fresh.call_id, "ok", '{"content": []}')
        with pytest.raises(Exception, match=r"(?i)not found|no started call|unknown call"):
            await front.complete_tool_call(stale.call_id, "ok", '{"content": []}')
