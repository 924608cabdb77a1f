"""SQLite's WAL checkpoints, off the commit path (ADR 0049).

SQLite checkpoints automatically inside the commit that crosses `wal_autocheckpoint` pages:
that commit then copies the WAL into the database and syncs both (5–25 ms measured), and
every call waiting on its batch waits with it, which set the SQLite p99. The service's
connections turn the automatic checkpoint off (`database._SQLITE_PRAGMAS`) and this job runs
a PASSIVE checkpoint on its own connection and thread every interval: it never waits for a
writer or a reader, and a commit never copies pages. Durability is unchanged: what a commit
makes durable is the WAL write (synchronous=NORMAL, as before); a checkpoint only moves
committed pages into the main file. Connections that run without this job (the CLI's) still
checkpoint when the last one closes, as SQLite does by default.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service.storage.database import sqlite_connection

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_SECONDS = 0.5


class WalCheckpointer:
    """PASSIVE checkpoints of one SQLite database, from a thread of their own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: sqlite3.Connection | None = None
        # One thread: a checkpoint still running when the job is cancelled finishes before
        # the connection is closed after it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (blocking): (busy, WAL frames, frames checkpointed)."""
        if self._conn is None:
            self._conn = sqlite_connection(self._engine)
        busy, frames, done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(done)

    async def run(self, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        """Checkpoints every `interval` until cancelled; a failed round retries next time."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    await loop.run_in_executor(self._thread, self.checkpoint)
                except (sqlite3.Error, ValueError) as exc:  # ValueError: an in-memory database
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._thread.submit(self._close)
            self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
