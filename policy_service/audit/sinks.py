"""Where audit batches land. One sink per database, both append-only: a batch of new rows
and a batch of completions commit in one transaction.

A completion is a single INSERT…SELECT that copies the facts of the call's `started` row,
so completing a call costs no read round trip; a unique index on `completes` makes the
second completion of a call a no-op that the sink reports as a conflict."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.storage.database import WriteGuard, sqlite_connection
from policy_service.storage.models import AuditRequestLog, utcnow

TABLE: Table = AuditRequestLog.__table__  # type: ignore[assignment]
COLUMNS = [c.name for c in TABLE.columns if c.name != "seq"]
# What a completion record copies from the row it completes, so it reads and filters alike.
CALL_FACTS = (
    "source",
    "org_slug",
    "toolkit_org_slug",
    "toolkit_slug",
    "tool",
    "method",
    "actor_type",
    "actor_id",
    "actor_display",
    "permission",
    "decision",
    "approval_id",
    "client_address",
    "user_agent",
    "request_id",
    "service_id",
    "trace_id",
    "rule",
    # The partition key (ADR 0022): a completion lands in its call's partition, so the unique
    # index on (completes, call_at) is a database fact on a partitioned table too.
    "call_at",
)
# A call can be completed this long after it started (ADR 0022): the completion's lookup by
# call_id then reads only the partitions of the last week, not every month kept. Older calls
# were closed as `abandoned` by the sweeper long before (MONOMCP_AUDIT_ABANDON_AFTER_SECONDS).
COMPLETABLE_FOR = timedelta(days=7)
# What a completion brings itself (the rest of the columns).
COMPLETION_FIELDS = (
    "call_id",
    "completes",
    "request_payload",
    "response_payload",
    "redacted_paths",
    "status",
    "error",
    "duration_ms",
    "created_at",
    "completed_at",
)


class Completed(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"  # no started call with this id for this service
    CONFLICT = "conflict"  # the call already has its completion record


@dataclass(frozen=True, slots=True)
class Completion:
    """The completion record of call `completes`, written by service `service_id`."""

    call_id: str
    completes: str
    service_id: str
    response_payload: str
    redacted_paths: str
    status: str
    error: str
    duration_ms: float
    at: datetime

    def values(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "completes": self.completes,
            "request_payload": "",
            "response_payload": self.response_payload,
            "redacted_paths": self.redacted_paths,
            "status": self.status,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "created_at": self.at,
            "completed_at": self.at,
        }


class AuditSink(Protocol):
    async def commit(self, rows: list[dict[str, Any]], completions: list[Completion]) -> list[Completed]:
        """Commits every row and completion in one transaction (raises: nothing committed)."""

    async def close(self) -> None: ...


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def with_call_at(row: dict[str, Any]) -> dict[str, Any]:
    """A new row belongs to a call that starts now: its partition key is its own time."""
    if row.get("call_at") is None:
        row["call_at"] = row.get("created_at") or utcnow()
    return row


# How long a cancelled batch keeps the WriteGuard while the thread finishes it (a write waits
# for another process's lock up to the busy timeout; stop must not wait that long).
_CANCELLED_WAIT_SECONDS = 5.0


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


# The SQLite sink's statements, written out once (what SQLAlchemy Core compiled them to before).
_SQLITE_INSERT = f"INSERT INTO {TABLE.name} ({', '.join(COLUMNS)}) VALUES ({_placeholders(len(COLUMNS))})"
# The completion copies its call's facts; OR IGNORE: a second completion (the unique index on
# `completes`) writes nothing, and the sink tells a conflict from a call never started.
_WHERE_STARTED = "call_id = ? AND status = 'started' AND service_id = ? AND call_at >= ?"
_SQLITE_COMPLETE = (
    f"INSERT OR IGNORE INTO {TABLE.name} ({', '.join((*CALL_FACTS, *COMPLETION_FIELDS))}) "
    f"SELECT {', '.join(CALL_FACTS)}, {_placeholders(len(COMPLETION_FIELDS))} "
    f"FROM {TABLE.name} WHERE {_WHERE_STARTED}"
)
_SQLITE_STARTED = f"SELECT 1 FROM {TABLE.name} WHERE {_WHERE_STARTED}"
_STARTED_KEYS = ("completes", "service_id", "completable_since")


class SqlSink:
    """SQLite, the embedded default: its own sqlite3 connection, used from one thread, and a
    whole batch (every new row in one executemany, each completion, the commit) handed to that
    thread at once. Through SQLAlchemy and aiosqlite every statement and the commit were each a
    hand-off between the event loop and aiosqlite's thread, and each completion a Core execute
    of its own: most of the policy service's CPU per call on SQLite (ADR 0042).

    The batch holds the WriteGuard while it writes, as every other write of this process does,
    so they still queue rather than meet SQLite's busy handler; a batch whose writer is
    cancelled (at stop) is still written by the thread, so the guard is held until the thread
    is done with it (at most `cancelled_wait` seconds, so a stuck thread cannot hang stop).
    Values are converted by the columns' own bind processors, so the rows stored are those
    SQLAlchemy would store."""

    cancelled_wait = _CANCELLED_WAIT_SECONDS

    def __init__(self, engine: AsyncEngine, guard: WriteGuard) -> None:
        self._engine = engine
        self._guard = guard
        dialect = engine.dialect
        self._bind: dict[str, Callable[[Any], Any]] = {
            c.name: process
            for c in TABLE.columns
            if (process := c.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        self._bind["completable_since"] = self._bind["call_at"]
        self._conn: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def commit(self, rows: list[dict[str, Any]], completions: list[Completion]) -> list[Completed]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="audit-sqlite", daemon=True)
            self._thread.start()
        async with self._guard():
            loop = asyncio.get_running_loop()
            done: asyncio.Future[list[Completed]] = loop.create_future()
            # Settled when the thread is done with the batch, whatever became of `done`: a
            # cancelled await cancels `done` itself, and the thread writes the batch anyway.
            written: asyncio.Future[None] = loop.create_future()
            self._jobs.put((done, written, rows, completions))
            try:
                return await done
            except asyncio.CancelledError:
                # Keep the guard until the thread has finished (bounded): released now, the
                # next writer would meet the thread's open transaction in SQLite's busy handler.
                await asyncio.wait((written,), timeout=self.cancelled_wait)
                raise

    def _serve(self) -> None:
        """The sink's thread: writes each batch handed to it and answers on the batch's loop
        (a queue and a callback: a third of the CPU of an executor's round trip here)."""
        while (job := self._jobs.get()) is not None:
            done, written, rows, completions = job
            try:
                outcome: list[Completed] | BaseException = self._write(rows, completions)
            except BaseException as exc:
                outcome = exc
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits for it
                done.get_loop().call_soon_threadsafe(_settle, done, written, outcome)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, rows: list[dict[str, Any]], completions: list[Completion]) -> list[Completed]:
        """In the sink's thread: one transaction, committed, or rolled back when anything fails."""
        if self._conn is None:
            self._conn = sqlite_connection(self._engine)
        conn = self._conn
        try:
            if rows:
                conn.executemany(_SQLITE_INSERT, [self._params(COLUMNS, with_call_at(r)) for r in rows])
            outcomes = [self._complete(conn, done) for done in completions]
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return outcomes

    def _complete(self, conn: sqlite3.Connection, done: Completion) -> Completed:
        values = done.values() | {"service_id": done.service_id, "completable_since": done.at - COMPLETABLE_FOR}
        if conn.execute(_SQLITE_COMPLETE, self._params((*COMPLETION_FIELDS, *_STARTED_KEYS), values)).rowcount:
            return Completed.OK
        exists = conn.execute(_SQLITE_STARTED, self._params(_STARTED_KEYS, values)).fetchone() is not None
        return Completed.CONFLICT if exists else Completed.NOT_FOUND

    def _params(self, names: Sequence[str], values: dict[str, Any]) -> tuple[Any, ...]:
        bind = self._bind
        return tuple(bind[n](values[n]) if n in bind else values[n] for n in names)

    async def close(self) -> None:
        """Closes the connection once every batch handed over is written."""
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None


_Job = tuple[asyncio.Future[list[Completed]], asyncio.Future[None], list[dict[str, Any]], list[Completion]]


def _settle(
    done: asyncio.Future[list[Completed]], written: asyncio.Future[None], outcome: list[Completed] | BaseException
) -> None:
    if not written.done():
        written.set_result(None)
    if done.done():  # its writer was cancelled; the batch was written (or failed) all the same
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
