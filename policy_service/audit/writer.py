"""Group commit for audit rows: concurrent writes share one transaction.

Each caller awaits its own future, which resolves only after the batch holding its row
has committed, so no call is acknowledged before its row is durable. One writer task
per process also means SQLite never sees competing writers from this process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.storage.database import WriteGuard
from policy_service.storage.models import AuditRequestLog

log = logging.getLogger(__name__)

_MAX_BATCH = 256


@dataclass(slots=True)
class _Op:
    kind: str  # "insert" | "complete"
    values: dict[str, Any]
    done: asyncio.Future[None]


def _append_json_list(column: Any, more_json: str) -> Any:
    """SQL that appends the items of a JSON list text to a JSON list text column (both dialects)."""
    return case(
        (column == "[]", more_json),
        else_=func.substr(column, 1, func.length(column) - 1) + "," + more_json[1:],
    )


class AuditWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], guard: WriteGuard) -> None:
        self._sessions = sessions
        self._guard = guard
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

    async def insert(self, row: dict[str, Any]) -> None:
        """Returns once the row is committed."""
        await self._submit("insert", row)

    async def complete(self, call_id: str, values: dict[str, Any]) -> None:
        """Finishes a `started` row. Finished rows are never changed again."""
        await self._submit("complete", {"call_id": call_id, **values})

    async def _submit(self, kind: str, values: dict[str, Any]) -> None:
        if self._task is None:
            raise RuntimeError("audit writer not started")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(kind, values, fut))
        await fut

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception as exc:
                log.exception("audit batch of %d failed", len(batch))
                for op in batch:
                    if not op.done.done():
                        op.done.set_exception(exc)
                    self._queue.task_done()
                continue
            for op in batch:
                if not op.done.done():
                    op.done.set_result(None)
                self._queue.task_done()

    async def _commit(self, batch: list[_Op]) -> None:
        inserts = [op.values for op in batch if op.kind == "insert"]
        async with self._guard(), self._sessions() as session, session.begin():
            if inserts:
                await session.execute(insert(AuditRequestLog), inserts)
            for op in batch:
                if op.kind == "complete":
                    values = dict(op.values)
                    call_id = values.pop("call_id")
                    more = values.pop("more_redacted_paths", None)
                    if more:
                        values["redacted_paths"] = _append_json_list(AuditRequestLog.redacted_paths, more)
                    await session.execute(
                        update(AuditRequestLog)
                        .where(AuditRequestLog.call_id == call_id, AuditRequestLog.status == "started")
                        .values(**values)
                    )
