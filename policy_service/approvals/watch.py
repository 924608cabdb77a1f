"""Fans approval changes out to WatchApprovals streams.

Polls the database (so changes made through any replica arrive) and is poked locally so
changes made here arrive at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.approvals import store
from policy_service.storage.models import utcnow

log = logging.getLogger(__name__)


class ApprovalWatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], poll_seconds: float = 0.5) -> None:
        self._sessions = sessions
        self._poll = poll_seconds
        self._subscribers: set[tuple[str | None, asyncio.Queue[store.ApprovalRecord]]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def subscribe(self, org_id: str | None) -> AsyncIterator[store.ApprovalRecord]:
        queue: asyncio.Queue[store.ApprovalRecord] = asyncio.Queue(maxsize=1000)
        entry = (org_id, queue)
        self._subscribers.add(entry)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="approval-watch")
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(entry)

    async def _run(self) -> None:
        # Start slightly in the past so rows committed while subscribing are not missed.
        since = utcnow() - timedelta(seconds=1)
        seen: dict[str, object] = {}
        while True:
            try:
                async with self._sessions() as session:
                    changed = await store.changed_since(session, None, since)
            except Exception:
                log.exception("approval watch poll failed")
                changed = []
            for record in changed:
                since = max(since, record.row.updated_at - timedelta(milliseconds=1))
                fingerprint = (record.row.status, record.row.updated_at)
                if seen.get(record.row.id) == fingerprint:
                    continue
                seen[record.row.id] = fingerprint
                for org_id, queue in list(self._subscribers):
                    if org_id is None or org_id == record.row.org_id:
                        if not queue.full():
                            queue.put_nowait(record)
            if len(seen) > 10_000:
                seen.clear()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except TimeoutError:
                pass
