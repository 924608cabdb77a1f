"""SQLite's WAL checkpoints run beside the commits, not inside them (policy_service/storage/checkpoints.py).

A commit that crossed SQLite's automatic checkpoint threshold used to copy the WAL into the
database and sync both before returning, and every call waiting on that audit batch waited
with it. The service's connections now never checkpoint on commit, and the policy service
runs PASSIVE checkpoints on its own thread. Observed from the WAL file itself: its header's
salt changes each time the log restarts from the beginning, which SQLite does on the first
commit after a checkpoint has copied every frame."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from policy_service.api.server import PolicyServer
from policy_service.client import PolicyClient
from policy_service.storage.checkpoints import WalCheckpointer
from policy_service.storage.database import create_engine, sqlite_connection

PAGE = 4096


def _wal_salt(database: Path) -> bytes:
    """The WAL header's salt-1: SQLite picks a new one whenever the log restarts."""
    with open(f"{database}-wal", "rb") as wal:
        return wal.read(32)[16:20]


def _commit_pages(conn: sqlite3.Connection, commits: int, pages_each: int) -> None:
    for _ in range(commits):
        conn.executemany("INSERT INTO blobs (data) VALUES (?)", [(b"x" * PAGE,)] * pages_each)
        conn.commit()


async def test_commits_leave_checkpoints_to_the_job(tmp_path: Path) -> None:
    database = tmp_path / "wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)"))
        writer = sqlite_connection(engine)
        salt = _wal_salt(database)
        # 3,000 pages in 30 commits: SQLite's default (1,000 pages) would have checkpointed
        # inside two of them and restarted the log, keeping the file near 1,100 pages.
        _commit_pages(writer, 30, 100)
        assert (database.parent / "wal.db-wal").stat().st_size > 2_500 * PAGE
        assert _wal_salt(database) == salt  # no commit restarted the log

        assert database.stat().st_size < 100 * PAGE  # nothing copied into the database yet
        checkpointer = WalCheckpointer(engine)
        job = asyncio.create_task(checkpointer.run(interval=0.02))
        # Only a checkpoint copies pages into the database file: wait for it (not for a time
        # that a loaded machine may miss), bounded so a job that never runs fails.
        for _ in range(1_000):
            if database.stat().st_size > 2_500 * PAGE:
                break
            await asyncio.sleep(0.02)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        await asyncio.to_thread(checkpointer._thread.shutdown)  # the round under way has finished
        _commit_pages(writer, 1, 1)  # the first commit after a full checkpoint restarts the log
        assert _wal_salt(database) != salt
        assert writer.execute("SELECT count(*) FROM blobs").fetchone() == (3_001,)
        writer.close()
    finally:
        await engine.dispose()


async def test_the_policy_service_checkpoints_its_sqlite_database(
    database_url: str, policy: PolicyServer, operator: PolicyClient
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("checkpoints are SQLite's")
    database = Path(database_url.split("///", 1)[1])
    await operator.create_org("walorg", "WAL org")
    salt = _wal_salt(database)
    deadline = time.monotonic() + 10
    while _wal_salt(database) == salt:  # the job checkpoints every 0.5 s; each write may restart
        assert time.monotonic() < deadline, "the WAL never restarted: nothing checkpoints it"
        await operator.upsert_toolkit("walorg", "kit", visibility="private", backend_url="http://127.0.0.1:9/mcp")
        await asyncio.sleep(0.2)
