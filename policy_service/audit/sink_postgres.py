"""The Postgres audit sink: one dedicated asyncpg connection, no ORM, no pool, no pre-ping.

New rows go in as one prepared multi-row INSERT from arrays (`unnest`), completions as one
prepared INSERT…SELECT over arrays that copies each call's `started` row: one statement per
batch (atomic on its own), or both in one transaction when a batch carries both kinds. A
dropped connection is reopened on the next batch."""

from __future__ import annotations

import logging
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


def _pg_type(name: str) -> str:
    python = TABLE.c[name].type.python_type
    if python is float:
        return "float8"
    if name in ("created_at", "completed_at", "call_at"):
        return "timestamp"
    return "text"


def _arrays_insert() -> str:
    names = ", ".join(COLUMNS)
    params = ", ".join(f"${i}::{_pg_type(c)}[]" for i, c in enumerate(COLUMNS, 1))
    return f"INSERT INTO {TABLE.name} ({names}) SELECT * FROM unnest({params})"


_COMPLETE_ARGS = (
    ("call_id", "text"),
    ("completes", "text"),
    ("service_id", "text"),
    ("response_payload", "text"),
    ("redacted_paths", "text"),
    ("status", "text"),
    ("error", "text"),
    ("duration_ms", "float8"),
    ("at", "timestamp"),
)


def _arrays_complete() -> str:
    facts = ", ".join(f"s.{name}" for name in CALL_FACTS if name != "service_id")
    params = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(_COMPLETE_ARGS, 1))
    names = ", ".join(name for name, _ in _COMPLETE_ARGS)
    return (
        f"INSERT INTO {TABLE.name} ({', '.join(n for n in CALL_FACTS if n != 'service_id')}, service_id, call_id, "
        "completes, request_payload, response_payload, redacted_paths, status, error, duration_ms, "
        "created_at, completed_at) "
        f"SELECT {facts}, s.service_id, i.call_id, i.completes, '', i.response_payload, i.redacted_paths, "
        "i.status, i.error, i.duration_ms, i.at, i.at "
        f"FROM unnest({params}) AS i({names}) "
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


_INSERT = _arrays_insert()
_COMPLETE = _arrays_complete()
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
# (docs/benchmarks-scale.md).
_SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


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
                    await conn.execute(_INSERT, *self._columns(rows))
                    written = await conn.fetch(_COMPLETE, *self._completion_arrays(completions))
            elif rows:  # one statement commits atomically on its own: no BEGIN/COMMIT round trips
                await conn.execute(_INSERT, *self._columns(rows))
                return []
            else:
                written = await conn.fetch(_COMPLETE, *self._completion_arrays(completions))
            return await self._outcomes(conn, completions, {(r[0], r[1]) for r in written})
        except (OSError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError):
            await self._drop()
            raise

    @staticmethod
    def _completion_arrays(completions: list[Completion]) -> list[list[Any]]:
        return [
            [c.call_id for c in completions],
            [c.completes for c in completions],
            [c.service_id for c in completions],
            [c.response_payload for c in completions],
            [c.redacted_paths for c in completions],
            [c.status for c in completions],
            [c.error for c in completions],
            [c.duration_ms for c in completions],
            [naive_utc(c.at) for c in completions],
        ]

    @staticmethod
    async def _outcomes(
        conn: asyncpg.Connection, completions: list[Completion], written: set[tuple[str, str]]
    ) -> list[Completed]:
        """Which completions were written; of the others, which calls had their completion
        already (conflict) and which were never started by that service (not found)."""
        missing = [c.completes for c in completions if (c.completes, c.service_id) not in written]
        since = naive_utc(min((c.at for c in completions), default=utcnow())) - COMPLETABLE_FOR
        started = {(r[0], r[1]) for r in await conn.fetch(_STARTED, missing, since)} if missing else set()
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

    @staticmethod
    def _columns(rows: list[dict[str, Any]]) -> list[list[Any]]:
        out: list[list[Any]] = []
        rows = [with_call_at(r) for r in rows]
        for name in COLUMNS:
            if name in ("created_at", "completed_at", "call_at"):
                out.append([naive_utc(r[name]) if r[name] is not None else None for r in rows])
            else:
                out.append([r[name] for r in rows])
        return out

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=1)
            except Exception:
                self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        await self._drop()
