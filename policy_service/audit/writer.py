"""Group commit for audit rows: concurrent writes share one transaction.

Each caller awaits its own future, which resolves only after the batch holding its row
has committed, so no call is acknowledged before its row is durable. The log is
append-only: a call's completion is a second row naming the first (`completes`), never an
UPDATE, so digests never wait behind unfinished calls and nothing is rewritten.

Every audit row the policy service writes outside an approval's own transaction goes
through `AuditLog`; the sink (sinks.py, sink_postgres.py) is chosen by the database.

One row never sinks another: text is made storable before it is queued (NUL bytes, which
Postgres refuses, are escaped), and when a batch still fails its rows are retried one by
one, so only the row at fault fails (and its call does not run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from policy_service.audit.sinks import TABLE, AuditSink, Completed, Completion, SqlSink, with_call_at
from policy_service.observability.metrics import PolicyMetrics
from policy_service.storage.database import WriteGuard

log = logging.getLogger(__name__)

_MAX_BATCH = 512
_DEFAULTS: dict[str, Any] = {
    c.name: getattr(c.default, "arg", None)
    for c in TABLE.columns
    if c.default is not None and not callable(getattr(c.default, "arg", None))
}
_COLUMNS = [c.name for c in TABLE.columns if c.name != "seq"]
_EMPTY_ROW = {name: _DEFAULTS.get(name) for name in _COLUMNS}


class CompletionConflict(Exception):
    """The call already has a completion record."""


class CallNotStarted(Exception):
    """No started call with this id for this service identity."""


def storable(value: Any) -> Any:
    """Text any database accepts: NUL escaped, lone surrogates replaced."""
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\\u0000")
    if value.isascii():  # no surrogate can hide in it: no encoded copy needed
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def full_row(values: dict[str, Any]) -> dict[str, Any]:
    """Every column present, so one statement covers rows written by different paths."""
    row = {name: storable(values.get(name, default)) for name, default in _EMPTY_ROW.items()}
    return with_call_at(row)


def make_sink(engine: AsyncEngine, guard: WriteGuard) -> AuditSink:
    if engine.dialect.name == "postgresql":
        from policy_service.audit.sink_postgres import PostgresSink

        return PostgresSink(engine.url)
    return SqlSink(engine, guard)


@dataclass(slots=True)
class _Op:
    row: dict[str, Any] | None
    completion: Completion | None
    done: asyncio.Future[None]


class AuditLog:
    """The one entry point for audit writes outside an approval's own transaction."""

    def __init__(self, engine: AsyncEngine, guard: WriteGuard, metrics: PolicyMetrics | None = None) -> None:
        self._sink = make_sink(engine, guard)
        self._metrics = metrics
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._sink.close()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def insert(self, row: dict[str, Any]) -> None:
        """Returns once the row is committed; raises if this row cannot be stored."""
        await self._enqueue(_Op(full_row(row), None, self._future()))

    async def complete(self, completion: Completion) -> None:
        """Appends the completion record of a started call once it is committed. Raises
        CallNotStarted (no such started call for this service) or CompletionConflict."""
        payload, error = storable(completion.response_payload), storable(completion.error)
        if payload is not completion.response_payload or error is not completion.error:
            completion = dataclasses.replace(completion, response_payload=payload, error=error)
        await self._enqueue(_Op(None, completion, self._future()))

    @staticmethod
    async def stage(session: AsyncSession, row: dict[str, Any]) -> None:
        """Adds a row to a caller's own transaction (an approval consumed with its call's row):
        it commits, or fails, with that transaction."""
        await session.execute(insert(TABLE), [full_row(row)])

    def _future(self) -> asyncio.Future[None]:
        if self._task is None:
            raise RuntimeError("audit writer not started")
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, op: _Op) -> None:
        self._queue.put_nowait(op)
        await op.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            started = time.perf_counter()
            try:
                results = await self._commit(batch)
                if self._metrics is not None:
                    self._metrics.audit_commit_seconds.observe(time.perf_counter() - started)
            except Exception:
                log.warning("audit batch of %d failed; retrying its rows one by one", len(batch))
                if self._metrics is not None:
                    self._metrics.audit_batch_failures.inc()
                results = [await self._commit_alone(op) for op in batch]
            for op, error in zip(batch, results, strict=True):
                if not op.done.done():
                    if error is None:
                        op.done.set_result(None)
                    else:
                        op.done.set_exception(error)
                self._queue.task_done()

    async def _commit(self, batch: list[_Op]) -> list[BaseException | None]:
        rows = [op.row for op in batch if op.row is not None]
        completions = [op.completion for op in batch if op.completion is not None]
        outcomes = iter(await self._sink.commit(rows, completions))
        return [None if op.completion is None else _error(op.completion, next(outcomes)) for op in batch]

    async def _commit_alone(self, op: _Op) -> BaseException | None:
        try:
            return (await self._commit([op]))[0]
        except Exception as exc:
            name = op.row["call_id"] if op.row is not None else op.completion.call_id if op.completion else "?"
            log.error("audit row %s could not be stored: %s", name, exc)
            return exc


def _error(completion: Completion, outcome: Completed) -> BaseException | None:
    if outcome is Completed.OK:
        return None
    if outcome is Completed.CONFLICT:
        return CompletionConflict(completion.completes)
    return CallNotStarted(completion.completes)


# The name the rest of the service has used for the seam.
AuditWriter = AuditLog
