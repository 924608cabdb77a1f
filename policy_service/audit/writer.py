"""Group commit for audit rows: concurrent writes share one transaction.

Each caller awaits its own future, which resolves only after the batch holding its row
has committed, so no call is acknowledged before its row is durable. Batches go out as
one executemany per statement shape (Core, not ORM: this is the hottest write path).
One writer task per process also means SQLite never sees competing writers from here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Table, bindparam, case, func, insert, literal, update
from sqlalchemy.ext.asyncio import AsyncEngine

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

_more: BindParameter[str] = bindparam("more_paths")
_COMPLETE = (
    update(_TABLE)
    .where(_TABLE.c.call_id == bindparam("target_call_id"), _TABLE.c.status == "started")
    .values(
        status=bindparam("status"),
        response_payload=bindparam("response_payload"),
        error=bindparam("error"),
        duration_ms=bindparam("duration_ms"),
        completed_at=bindparam("completed_at"),
        # Append the response's redacted paths to the request's (JSON list texts).
        redacted_paths=case(
            (_more == literal("[]"), _TABLE.c.redacted_paths),
            (_TABLE.c.redacted_paths == literal("[]"), _more),
            else_=func.substr(_TABLE.c.redacted_paths, 1, func.length(_TABLE.c.redacted_paths) - 1)
            + literal(",")
            + func.substr(_more, 2),
        ),
    )
)


@dataclass(slots=True)
class _Op:
    kind: str  # "insert" | "complete"
    values: dict[str, Any]
    done: asyncio.Future[None]


def _full_row(values: dict[str, Any]) -> dict[str, Any]:
    """Every column present, so one executemany covers rows written by different paths."""
    row = {name: values.get(name, _DEFAULTS.get(name)) for name in _COLUMNS}
    return row


class AuditWriter:
    def __init__(self, engine: AsyncEngine, guard: WriteGuard) -> None:
        self._engine = engine
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
        await self._submit("insert", _full_row(row))

    async def complete(
        self,
        call_id: str,
        status: str,
        response: str,
        error: str,
        duration_ms: float,
        completed_at: Any,
        more_paths: str,
    ) -> None:
        """Finishes a `started` row. Finished rows are never changed again."""
        values = {
            "target_call_id": call_id,
            "status": status,
            "response_payload": response,
            "error": error,
            "duration_ms": duration_ms,
            "completed_at": completed_at,
            "more_paths": more_paths,
        }
        await self._submit("complete", values)

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
            error: BaseException | None = None
            try:
                await self._commit(batch)
            except Exception as exc:
                log.exception("audit batch of %d failed", len(batch))
                error = exc
            for op in batch:
                if not op.done.done():
                    if error is None:
                        op.done.set_result(None)
                    else:
                        op.done.set_exception(error)
                self._queue.task_done()

    async def _commit(self, batch: list[_Op]) -> None:
        inserts = [op.values for op in batch if op.kind == "insert"]
        completes = [op.values for op in batch if op.kind == "complete"]
        async with self._guard(), self._engine.begin() as conn:
            if inserts:
                await conn.execute(insert(_TABLE), inserts)
            if completes:
                await conn.execute(_COMPLETE, completes)
