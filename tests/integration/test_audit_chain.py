"""Tamper evidence over an append-only log: digests never wait behind unfinished calls,
verification only reads, signed digests and exported copies catch what the database
alone cannot, and one bad row never sinks the rows committed beside it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.audit import chain
from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.audit.writer import AuditWriter
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.storage.database import WriteGuard, create_engine, is_sqlite, session_factory
from policy_service.storage.models import new_id, utcnow
from tests.conftest import World

NOW = dt.timedelta(0)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url)
    yield engine
    await engine.dispose()


def digester(engine: AsyncEngine, **policy: object) -> AuditDigester:
    return AuditDigester(session_factory(engine), DigestPolicy(settle=NOW, **policy))  # type: ignore[arg-type]


async def _calls(world: World, n: int, complete: bool = True) -> list[str]:
    ids = []
    async with world.service() as front:
        for i in range(n):
            decision = await front.authorize_tool_call(
                world.keys["acme:member"], "acme", "tools", "echo", f'{{"text": "{i}"}}'
            )
            if complete:
                await front.complete_tool_call(decision.call_id, "ok", '{"content": []}')
            ids.append(decision.call_id)
    return ids


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_an_unfinished_call_does_not_stall_digests(world: World, engine: AsyncEngine) -> None:
    await _calls(world, 1, complete=False)  # stays `started`, like a slow or crashed call
    await _calls(world, 3)
    digest = await digester(engine).write_digest()
    assert digest is not None and digest.row_count == await _count(engine, "audit_request_logs")


async def test_verify_only_reads_so_an_edit_before_the_digest_is_not_sealed(
    world: World, engine: AsyncEngine
) -> None:
    await _calls(world, 2)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_request_logs SET actor_display = 'someone else'"))
    assert (await world.operator.verify_audit()).ok  # nothing digested yet: nothing to compare
    assert await _count(engine, "audit_digests") == 0  # and verify wrote no digest over the edit


async def test_deleting_the_newest_digest_and_its_rows_is_caught_by_an_export(
    world: World, engine: AsyncEngine
) -> None:
    d = digester(engine)
    await _calls(world, 2)
    await d.write_digest()
    await _calls(world, 2)
    newest = await d.write_digest()
    assert newest is not None
    exported = await world.operator.export_audit_digests()
    assert (await world.operator.verify_audit(exported)).ok
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_request_logs WHERE seq >= :s"), {"s": newest.first_seq})
        await conn.execute(text("DELETE FROM audit_digests WHERE id = :i"), {"i": newest.id})
    assert (await world.operator.verify_audit()).ok  # the database alone cannot tell
    result = await world.operator.verify_audit(exported)
    assert not result.ok and f"digest {newest.id}: missing" in "\n".join(result.problems)


async def test_signed_digests_expose_a_rewritten_chain(world: World, engine: AsyncEngine) -> None:
    signed = digester(engine, signing_key="k" * 32)
    await _calls(world, 2)
    await signed.write_digest()
    assert (await signed.verify()).ok
    # An attacker with database access edits a row, then rebuilds the chain without the key.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_request_logs SET response_payload = '{}'"))
        await conn.execute(text("DELETE FROM audit_digests"))
    await digester(engine).write_digest()
    result = await signed.verify()
    assert not result.ok and "signature does not match" in "\n".join(result.problems)
    links = [chain.Link.from_json(link.to_json()) for link in await signed.links()]
    assert chain.check_links(links, "k" * 32, anchors_allowed=False)  # the offline check agrees


async def test_a_forged_retention_anchor_fails_where_retention_is_off(world: World, engine: AsyncEngine) -> None:
    await _calls(world, 3)
    pruning = digester(engine, retention=True, stale_after=dt.timedelta(days=36500))
    await pruning.write_digest()
    async with engine.begin() as conn:  # age the rows so "retention" may prune them
        await conn.execute(text("UPDATE audit_request_logs SET created_at = '2020-01-01 00:00:00'"))
        await conn.execute(text("DELETE FROM audit_digests"))
    await pruning.write_digest()
    assert await pruning.apply_retention(utcnow() - dt.timedelta(days=1)) > 0
    assert (await pruning.verify()).ok
    problems = (await digester(engine, retention=False).verify()).problems
    assert any("retention anchor" in p for p in problems)
    assert await digester(engine, retention=False).apply_retention(utcnow()) == 0


async def test_one_bad_row_fails_alone_and_its_batch_neighbours_commit(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    writer = AuditWriter(engine, WriteGuard(is_sqlite(settings.database_url)))
    writer.start()
    try:
        taken = new_id()
        await writer.insert({"call_id": taken, "status": "ok", "created_at": utcnow()})
        good = [
            {"call_id": new_id(), "status": "ok", "tool": f"t{i}\x00nul", "created_at": utcnow()} for i in range(20)
        ]
        duplicate = {"call_id": taken, "status": "ok", "created_at": utcnow()}
        outcomes = await asyncio.gather(
            *(writer.insert(row) for row in [*good[:10], duplicate, *good[10:]]), return_exceptions=True
        )
        assert [o is None for o in outcomes] == [True] * 10 + [False] + [True] * 10
        async with engine.connect() as conn:
            tools = (await conn.execute(text("SELECT tool FROM audit_request_logs WHERE tool LIKE 't%'"))).scalars()
            assert sorted(tools) == sorted(f"t{i}\\u0000nul" for i in range(20))
    finally:
        await writer.stop()
        await engine.dispose()


async def test_nul_in_a_tool_name_does_not_fail_other_tenants_calls(world: World) -> None:
    async def attacker() -> None:
        async with world.service() as front:
            for _ in range(20):
                await front.authorize_tool_call(world.keys["globex:member"], "acme", "shared", "ec\x00ho", "{}")

    async def victim() -> int:
        ok = 0
        async with world.service() as front:
            for _ in range(20):
                decision = await front.authorize_tool_call(world.keys["acme:member"], "acme", "tools", "echo", "{}")
                await front.complete_tool_call(decision.call_id, "ok", "{}")
                ok += 1
        return ok

    results = await asyncio.gather(attacker(), victim(), victim())
    assert results[1:] == [20, 20]
    records = (await world.operator.query_audit("globex", page_size=100)).records
    stored = [r for r in records if r.method == "tools/call"]
    assert len(stored) == 20 and all(r.tool == "ec\\u0000ho" and r.status == "invalid" for r in stored)


async def test_abandoned_calls_are_closed_by_an_appended_record(world: World, engine: AsyncEngine) -> None:
    [call_id] = await _calls(world, 1, complete=False)
    assert await digester(engine, abandon_after=NOW).sweep_abandoned() == 1
    assert await digester(engine, abandon_after=NOW).sweep_abandoned() == 0
    record = (await world.operator.query_audit("acme", call_id=call_id)).records[0]
    assert record.status == "abandoned"
    async with PolicyClient(world.policy_addr, service_token=world.service_token) as front:
        with pytest.raises(Exception, match="already completed"):
            await front.complete_tool_call(call_id, "ok", "{}")


async def test_a_digest_turned_into_an_anchor_is_caught_by_its_signature(world: World, engine: AsyncEngine) -> None:
    key = "k" * 32
    signed = digester(engine, signing_key=key, retention=True)
    await _calls(world, 3)
    first = await signed.write_digest()
    assert first is not None
    # Red team: rewrite digest 1 in place as a retention anchor, then edit and delete rows under it.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE audit_digests SET first_seq=0, row_count=0, rows_sha256='retention-anchor', "
                "row_hashes='[]', previous_digest=:g WHERE id=:i"
            ),
            {"g": chain.GENESIS, "i": first.id},
        )
        await conn.execute(text("UPDATE audit_request_logs SET error='edited under anchor' WHERE seq=:s"), {"s": 2})
        await conn.execute(text("DELETE FROM audit_request_logs WHERE seq=:s"), {"s": 1})
    problems = "\n".join((await signed.verify()).problems)
    assert "signature does not match" in problems and "rows remain under a retention anchor" in problems


async def test_wiped_digests_are_not_silently_rebuilt(world: World, engine: AsyncEngine) -> None:
    key = "k" * 32
    signed = digester(engine, signing_key=key)
    await _calls(world, 3)
    await signed.write_digest()
    async with engine.begin() as conn:  # history rewritten, digests wiped; the rows are old by now
        await conn.execute(text("DELETE FROM audit_digests"))
        await conn.execute(text("UPDATE audit_request_logs SET created_at = '2020-01-01 00:00:00'"))
    assert await signed.write_digest() is None  # no fresh chain sealing whatever was done
    result = await signed.verify()
    assert not result.ok and "no digest covers them" in "\n".join(result.problems)


async def test_a_replica_without_the_signing_key_does_not_extend_a_signed_chain(
    world: World, engine: AsyncEngine
) -> None:
    await _calls(world, 2)
    await digester(engine, signing_key="k" * 32).write_digest()
    await _calls(world, 2)
    assert await digester(engine).write_digest() is None
    assert (await digester(engine, signing_key="k" * 32).verify()).ok


async def test_racing_replicas_keep_one_chain(world: World, engine: AsyncEngine) -> None:
    # Two replicas = two engines (two pools) on one database, as two processes would have.
    other = create_engine(str(engine.url.render_as_string(hide_password=False)))
    replicas = [digester(engine), digester(other)]
    for _ in range(4):
        await _calls(world, 2)
        await asyncio.gather(*(r.write_digest() for r in replicas), return_exceptions=True)
    await other.dispose()
    result = await replicas[0].verify()
    assert result.ok, result.problems
