"""Engine and session factory for SQLite (embedded default) and Postgres (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# Every SQLite connection of the service, pooled or the audit sink's own (ADR 0042).
_SQLITE_TIMEOUT_SECONDS = 30
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    # Checkpoints run off the commit path (storage/checkpoints.py); the last connection to
    # close still checkpoints, so a CLI run without that job leaves no WAL behind.
    "PRAGMA wal_autocheckpoint=0",
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any = None) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": _SQLITE_TIMEOUT_SECONDS})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def sqlite_connection(engine: AsyncEngine) -> sqlite3.Connection:
    """A plain sqlite3 connection to the engine's database file, set up as the engine's own
    are (timeout, pragmas), usable from any one thread at a time."""
    args, options = engine.dialect.create_connect_args(engine.url)
    database = str(args[0])
    if database in (":memory:", ""):
        raise ValueError("a second connection to an in-memory SQLite database sees another database")
    kwargs: dict[str, Any] = {**options, "timeout": _SQLITE_TIMEOUT_SECONDS, "check_same_thread": False}
    conn: sqlite3.Connection = sqlite3.connect(database, **kwargs)
    _sqlite_pragmas(conn)
    return conn


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class WriteGuard:
    """Serializes this process's write transactions on SQLite.

    SQLite allows one writer; without this, concurrent transactions poll the busy handler
    (sleeping up to 100 ms at a time) instead of queueing. Postgres needs no guard.
    `guard()` is the lock itself (no generator per write, ADR 0042), or a no-op.
    """

    def __init__(self, serialize: bool) -> None:
        self._lock: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if serialize else contextlib.nullcontext()
        )

    def __call__(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._lock
