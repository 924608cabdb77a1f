"""Group commit for audit rows: concurrent writes share one transaction.

Each caller awaits its own future, which resolves only after the batch holding its row
has committed, so no call is acknowledged before its row is durable. The log is
append-only: a call's completion is a second row naming the first (`completes`), never an
UPDATE, so digests never wait behind unfinished calls and nothing is rewritten.

One row never sinks another: text is made storable before it is queued (NUL bytes, which
Postgres refuses, are escaped), and when a batch still fails its rows are retried one by
one, so only the row at fault fails (and its call does not run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.observability.metrics import PolicyMetrics
from policy_service.storage.database import WriteGuard
from policy_service.storage.models import AuditRequestLog

log = logging.getLogger(__name__)

_MAX_BATCH = 512
_TABLE: Table = AuditRequestLog.__table__  # type: ignore[assignment]
_DEFAULTS: dict[str, Any] = {
    c.name: getattr(c.default, "arg", None)
    for c in _TABLE.columns
    if c.default is not None and not callable(getattr(c.default, "arg", None))
}
_COLUMNS = [c.name for c in _TABLE.columns if c.name != "seq"]
# What a completion record copies from the row it completes, so it reads and filters alike.
_CALL_FACTS = (
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
)
_STARTED = select(*(_TABLE.c[name] for name in _CALL_FACTS)).where(_TABLE.c.status == "started")


class CompletionConflict(Exception):
    """The call already has a completion record."""


def storable(value: Any) -> Any:
    """Text any database accepts: NUL escaped, lone surrogates replaced."""
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\\u0000")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _full_row(values: dict[str, Any]) -> dict[str, Any]:
    """Every column present, so one executemany covers rows written by different paths."""
    return {name: storable(values.get(name, _DEFAULTS.get(name))) for name in _COLUMNS}


@dataclass(slots=True)
class _Op:
    values: dict[str, Any]
    done: asyncio.Future[None]


class AuditWriter:
    def __init__(self, engine: AsyncEngine, guard: WriteGuard, metrics: PolicyMetrics | None = None) -> None:
        self._engine = engine
        self._guard = guard
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

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def insert(self, row: dict[str, Any]) -> None:
        """Returns once the row is committed; raises if this row cannot be stored."""
        if self._task is None:
            raise RuntimeError("audit writer not started")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(_full_row(row), fut))
        await fut

    async def insert_completion(self, row: dict[str, Any]) -> bool:
        """Appends a completion record; False when the call already has one."""
        try:
            await self.insert(row)
        except CompletionConflict:
            return False
        return True

    async def started_call(self, call_id: str) -> dict[str, Any] | None:
        """The facts of a `started` call row (to copy into its completion), or None."""
        async with self._engine.connect() as conn:
            found = (await conn.execute(_STARTED.where(_TABLE.c.call_id == call_id))).first()
        return dict(found._mapping) if found is not None else None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            started = time.perf_counter()
            try:
                await self._commit([op.values for op in batch])
                results: list[BaseException | None] = [None] * len(batch)
                if self._metrics is not None:
                    self._metrics.audit_commit_seconds.observe(time.perf_counter() - started)
            except Exception:
                log.warning("audit batch of %d failed; retrying its rows one by one", len(batch))
                if self._metrics is not None:
                    self._metrics.audit_batch_failures.inc()
                results = [await self._commit_alone(op.values) for op in batch]
            for op, error in zip(batch, results, strict=True):
                if not op.done.done():
                    if error is None:
                        op.done.set_result(None)
                    else:
                        op.done.set_exception(error)
                self._queue.task_done()

    async def _commit_alone(self, values: dict[str, Any]) -> BaseException | None:
        try:
            await self._commit([values])
        except IntegrityError as exc:
            if values.get("completes"):
                return CompletionConflict(values["completes"])
            log.error("audit row %s refused: %s", values.get("call_id"), exc.orig)
            return exc
        except Exception as exc:
            log.exception("audit row %s could not be stored", values.get("call_id"))
            return exc
        return None

    async def _commit(self, rows: list[dict[str, Any]]) -> None:
        async with self._guard(), self._engine.begin() as conn:
            await conn.execute(insert(_TABLE), rows)
