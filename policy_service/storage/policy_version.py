"""The policy version: a number that moves on every write to a table decisions read, so a
replica may keep its decision snapshot (keys, members, toolkits, permissions) until it moves.

Database triggers (migration 0006) bump it, whatever code path wrote: on Postgres a
statement trigger notifies channel `monomcp_policy_version` on commit (LISTEN here), on
SQLite a row trigger increments `policy_version.version` (polled here). A heartbeat proves
the source alive; when it is not (no heartbeat for `FRESH_FOR` seconds), `current` is None
and the caches fall back to their short TTL, so revocation still lands within a second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

CHANNEL = "monomcp_policy_version"
SEQUENCE = "policy_version_seq"
# Tables whose rows decide a request, with the columns whose updates do not (bookkeeping).
POLICY_TABLES: dict[str, tuple[str, ...]] = {
    "organizations": (),
    "users": (),
    "roles": (),
    "memberships": (),
    "api_keys": ("last_used_at",),
    "toolkits": (),
    "tools": (),
    "org_tool_defaults": (),
    "role_overrides": (),
    "service_identities": ("last_used_at",),
    "console_sessions": (),
    "refresh_tokens": (),
    "org_domains": (),
    "policy_versions": (),
}
HEARTBEAT_SECONDS = 0.25
FRESH_FOR = 0.8


class PolicyVersion:
    """`current`: a local counter that moves whenever the database's version may have."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._counter = 0
        self._seen: int | None = None
        self._confirmed = float("-inf")
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> int | None:
        if time.monotonic() - self._confirmed > FRESH_FOR:
            return None
        return self._counter

    def bump(self) -> None:
        """A write this process made: drop the snapshot now, before any notification."""
        self._counter += 1

    def start(self) -> None:
        if self._task is None:
            run = self._listen if self._engine.dialect.name == "postgresql" else self._poll
            self._task = asyncio.get_running_loop().create_task(run(), name="policy-version")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _observe(self, value: int) -> None:
        if value != self._seen:
            self._seen = value
            self._counter += 1
        self._confirmed = time.monotonic()

    async def _poll(self) -> None:
        while True:
            try:
                async with self._engine.connect() as conn:
                    while True:
                        row = (await conn.execute(text("SELECT version FROM policy_version WHERE id = 1"))).first()
                        await conn.rollback()
                        if row is None:
                            raise LookupError("policy_version has no row (migration 0006 not applied?)")
                        self._observe(int(row[0]))
                        await asyncio.sleep(HEARTBEAT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("policy version poll failed (caches fall back to their TTL): %s", exc)
                await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        from policy_service.audit.sink_postgres import connect_args

        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(**connect_args(self._engine.url), timeout=5)
                await conn.add_listener(CHANNEL, self._notified)
                while True:
                    value = await conn.fetchval(f"SELECT last_value FROM {SEQUENCE}", timeout=FRESH_FOR)
                    self._observe(int(value))
                    await asyncio.sleep(HEARTBEAT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("policy version listener failed (caches fall back to their TTL): %s", exc)
                self._counter += 1
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    conn.terminate()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        # Every committed write notifies: the snapshot is out of date. Remembering the value it
        # carries keeps the next heartbeat from invalidating the snapshot a second time.
        self._counter += 1
        if payload.isdigit():
            self._seen = max(self._seen or 0, int(payload))


def postgres_triggers() -> list[str]:
    statements = [
        f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}",
        "CREATE OR REPLACE FUNCTION policy_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL}', nextval('{SEQUENCE}')::text); RETURN NULL; END $$",
    ]
    for table, _ in POLICY_TABLES.items():
        statements.append(
            f"CREATE TRIGGER policy_version_{table} AFTER INSERT OR UPDATE{_of(table)} OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION policy_version_bump()"
        )
    return statements


def sqlite_triggers() -> list[str]:
    statements = [
        "CREATE TABLE IF NOT EXISTS policy_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)",
        "INSERT OR IGNORE INTO policy_version (id, version) VALUES (1, 0)",
    ]
    bump = "BEGIN UPDATE policy_version SET version = version + 1 WHERE id = 1; END"
    for table in POLICY_TABLES:
        for event in ("INSERT", f"UPDATE{_of(table)}", "DELETE"):
            name = f"policy_version_{table}_{event.split()[0].lower()}"
            statements.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} {bump}")
    return statements


def drop_triggers(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS policy_version_{t} ON {t}" for t in POLICY_TABLES] + [
            "DROP FUNCTION IF EXISTS policy_version_bump()",
            f"DROP SEQUENCE IF EXISTS {SEQUENCE}",
        ]
    return [
        f"DROP TRIGGER IF EXISTS policy_version_{t}_{e}" for t in POLICY_TABLES for e in ("insert", "update", "delete")
    ] + ["DROP TABLE IF EXISTS policy_version"]


def _of(table: str) -> str:
    """` OF col, …` when some columns of `table` are bookkeeping (their updates decide nothing)."""
    skipped = POLICY_TABLES[table]
    if not skipped:
        return ""
    from policy_service.storage.models import Base

    columns = [c.name for c in Base.metadata.tables[table].columns if c.name not in skipped]
    return " OF " + ", ".join(columns)
