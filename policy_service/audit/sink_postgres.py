"""The Postgres audit sink: one dedicated asyncpg connection, no ORM, no pool, no pre-ping.

New rows go in as one prepared multi-row INSERT from an array of table rows (`unnest`),
completions as one prepared INSERT…SELECT over such an array that copies each call's
`started` row: one statement per batch (atomic on its own), or both in one transaction when
a batch carries both kinds. The array's elements are records of the table's own row type,
each sent as a dict: asyncpg tests every array element against three ABCs while encoding
(Python-level `isinstance` calls), so one element per row costs ~4 tests where one array per
column cost ~40 (ADR 0039). A batch of one (every commit at c=1) uses the same statements
over a one-row `VALUES` of scalars instead, which is cheaper still for one row (ADR 0034). A
dropped connection is reopened on the next batch."""

from __future__ import annotations

import logging
import operator
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from policy_service.audit.sinks import (
    CALL_FACTS,
    COLUMNS,
    COMPLETABLE_FOR,
    TABLE,
    Completed,
    Completion,
    naive_utc,
    with_call_at,
)
from policy_service.storage.models import utcnow

log = logging.getLogger(__name__)


_TIMES = frozenset({"created_at", "completed_at", "call_at"})


def _pg_type(name: str) -> str:
    python = TABLE.c[name].type.python_type
    if python is float:
        return "float8"
    if name in _TIMES:
        return "timestamp"
    return "text"


def _source(args: tuple[tuple[str, str, str], ...], arrays: bool) -> str:
    """The rows a statement reads, as `i(name, …)` for each (name, type, column carrying it):
    the columns of `unnest` of one array of table rows, or one row of scalars."""
    names = ", ".join(name for name, _, _ in args)
    if arrays:
        carried = ", ".join(column for _, _, column in args)
        return f"(SELECT {carried} FROM unnest($1::{TABLE.name}[])) AS i({names})"
    return "(VALUES (" + ", ".join(f"${i}::{kind}" for i, (_, kind, _) in enumerate(args, 1)) + f")) AS i({names})"


_ROW_ARGS = tuple((name, _pg_type(name), name) for name in COLUMNS)


def _insert(arrays: bool) -> str:
    return f"INSERT INTO {TABLE.name} ({', '.join(COLUMNS)}) SELECT * FROM {_source(_ROW_ARGS, arrays)}"


# A completion's own fields; as an array element it is a table row carrying them in these
# columns (the rest left NULL, never read). `completes` rides in a text column: the id the
# caller sent reaches the lookup as sent, as the scalar form's `text` parameter does (the
# varchar(32) `completes` column would refuse a longer one, or cut trailing blanks off it).
_COMPLETE_ARGS = (
    ("call_id", "text", "call_id"),
    ("completes", "text", "request_payload"),
    ("service_id", "text", "service_id"),
    ("response_payload", "text", "response_payload"),
    ("redacted_paths", "text", "redacted_paths"),
    ("status", "text", "status"),
    ("error", "text", "error"),
    ("duration_ms", "float8", "duration_ms"),
    ("at", "timestamp", "created_at"),
)


def _complete(arrays: bool) -> str:
    facts = ", ".join(f"s.{name}" for name in CALL_FACTS if name != "service_id")
    source = _source(_COMPLETE_ARGS, arrays)
    return (
        f"INSERT INTO {TABLE.name} ({', '.join(n for n in CALL_FACTS if n != 'service_id')}, service_id, call_id, "
        "completes, request_payload, response_payload, redacted_paths, status, error, duration_ms, "
        "created_at, completed_at) "
        f"SELECT {facts}, s.service_id, i.call_id, i.completes, '', i.response_payload, i.redacted_paths, "
        "i.status, i.error, i.duration_ms, i.at, i.at "
        f"FROM {source} "
        # LATERAL … LIMIT 1: one index lookup by call_id per item, in the partitions of the last
        # COMPLETABLE_FOR only (pruned at run time, ADR 0022), never a scan of every `started`
        # row (append-only: a call's first row stays `started` for ever). The completion copies
        # the call's call_at, so it lands in the call's partition and the unique (completes,
        # call_at) makes "completes once" a fact.
        f"CROSS JOIN LATERAL (SELECT * FROM {TABLE.name} WHERE call_id = i.completes "
        f"AND call_at >= i.at - interval '{COMPLETABLE_FOR.days} days' LIMIT 1) s "
        "WHERE s.status = 'started' AND s.service_id = i.service_id "
        "ON CONFLICT (completes, call_at) WHERE completes != '' DO NOTHING RETURNING completes, service_id"
    )


_INSERT, _INSERT_ONE = _insert(arrays=True), _insert(arrays=False)
_COMPLETE, _COMPLETE_ONE = _complete(arrays=True), _complete(arrays=False)
_STARTED = (
    f"SELECT call_id, service_id FROM {TABLE.name} "
    "WHERE call_id = ANY($1::text[]) AND status = 'started' AND call_at >= $2::timestamp"
)


def connect_args(url: URL) -> dict[str, Any]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


# The sink's statements are prepared once per connection and run with array parameters: a
# custom plan buys nothing (partitions are pruned at run time either way), but under the
# default `auto` mode Postgres kept re-planning the completion INSERT…SELECT over every month
# partition on each batch, and that planning grew with the log: 1.3 ms of backend CPU per
# completion at 0 rows, 2.5 ms at 2M; a generic plan costs 0.6–0.8 ms at both
# (docs/benchmarks-scale.md). A generic plan is made once, when this month's partition may still
# be empty and unanalysed (autovacuum off, a fresh month): it then seq-scanned the partition for
# every completion, 5-7 ms each after a few thousand rows. Seq scans are never what these
# statements want (every lookup is by the unique (call_id, call_at) index), so this one
# connection turns them off: 12x the authorize+complete pairs/s in `bench.policy_calls`.
_SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}


class PostgresSink:
    def __init__(self, url: URL) -> None:
        self._args = {**connect_args(url), "server_settings": _SERVER_SETTINGS}
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(**self._args)
        return self._conn

    async def commit(self, rows: list[dict[str, Any]], completions: list[Completion]) -> list[Completed]:
        conn = await self._connection()
        try:
            if rows and completions:
                async with conn.transaction():
                    await self._insert(conn, rows)
                    written = await self._complete(conn, completions)
            elif rows:  # one statement commits atomically on its own: no BEGIN/COMMIT round trips
                await self._insert(conn, rows)
                return []
            else:
                written = await self._complete(conn, completions)
            return await self._outcomes(conn, completions, {(r[0], r[1]) for r in written})
        except (OSError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError):
            await self._drop()
            raise
        except asyncpg.DatatypeMismatchError:
            # The table's row type changed under the connection (a migration while running):
            # the arrays' elements were encoded with the layout asyncpg cached. This batch fails
            # (its rows are retried alone, as scalars); the next one is encoded afresh.
            await conn.reload_schema_state()
            raise

    @staticmethod
    async def _insert(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
        if len(rows) == 1:
            await conn.execute(_INSERT_ONE, *_scalars(rows[0]))
        else:
            await conn.execute(_INSERT, [_record(row) for row in rows])

    @staticmethod
    async def _complete(conn: asyncpg.Connection, completions: list[Completion]) -> list[Any]:
        if len(completions) == 1:
            c = completions[0]
            args = (c.call_id, c.completes, c.service_id, c.response_payload, c.redacted_paths, c.status, c.error)
            written: list[Any] = await conn.fetch(_COMPLETE_ONE, *args, c.duration_ms, naive_utc(c.at))
        else:
            written = await conn.fetch(_COMPLETE, [_completion_record(c) for c in completions])
        return written

    @staticmethod
    async def _outcomes(
        conn: asyncpg.Connection, completions: list[Completion], written: set[tuple[str, str]]
    ) -> list[Completed]:
        """Which completions were written; of the others, which calls had their completion
        already (conflict) and which were never started by that service (not found)."""
        missing = [c.completes for c in completions if (c.completes, c.service_id) not in written]
        started: set[tuple[str, str]] = set()
        if missing:  # nearly never: every completion written
            since = naive_utc(min((c.at for c in completions), default=utcnow())) - COMPLETABLE_FOR
            started = {(r[0], r[1]) for r in await conn.fetch(_STARTED, missing, since)}
        outcomes: list[Completed] = []
        claimed: set[tuple[str, str]] = set()
        for c in completions:
            key = (c.completes, c.service_id)
            if key in written and key not in claimed:
                claimed.add(key)
                outcomes.append(Completed.OK)
            elif key in written or key in started:
                # Completed by an earlier item of this batch, or before it.
                outcomes.append(Completed.CONFLICT)
            else:
                outcomes.append(Completed.NOT_FOUND)
        return outcomes

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=1)
            except Exception:
                self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        await self._drop()


_PICK_COLUMNS = operator.itemgetter(*COLUMNS)
_TIME_INDEXES = tuple(i for i, name in enumerate(COLUMNS) if name in _TIMES)


def _scalars(row: dict[str, Any]) -> list[Any]:
    """The row's values in COLUMNS order, times as naive UTC."""
    values = list(_PICK_COLUMNS(with_call_at(row)))
    for i in _TIME_INDEXES:
        if values[i] is not None:
            values[i] = naive_utc(values[i])
    return values


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """The row as one element of a table-row array (a copy: a batch may be retried), times as naive UTC."""
    row = with_call_at(row)
    return row | {name: naive_utc(row[name]) for name in _TIMES if row[name] is not None}


def _completion_record(c: Completion) -> dict[str, Any]:
    """A completion as one element of a table-row array, in the columns `_COMPLETE_ARGS` name."""
    return {
        "call_id": c.call_id,
        "request_payload": c.completes,
        "service_id": c.service_id,
        "response_payload": c.response_payload,
        "redacted_paths": c.redacted_paths,
        "status": c.status,
        "error": c.error,
        "duration_ms": c.duration_ms,
        "created_at": naive_utc(c.at),
    }
