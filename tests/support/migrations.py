"""A database left at an older schema revision (SQLite file or a throwaway Postgres
database), for tests of what an upgrade does to rows written before it; and `monomcp` run
against a database the way an operator runs it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from policy_service.storage.migrate import upgrade
from tests.conftest import POSTGRES_URL


@contextlib.asynccontextmanager
async def database_at(backend: str, tmp_path: Path, revision: str) -> AsyncIterator[str]:
    """Yields the URL of a fresh database migrated to `revision` only (dropped afterwards)."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        await asyncio.to_thread(upgrade, url, revision)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip("MONOMCP_TEST_POSTGRES_URL not set")
    base = make_url(POSTGRES_URL)
    name = f"monomcp_mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host=base.host, port=base.port or 5432, user=base.username, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url, revision)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def monomcp_on(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`monomcp ARGS` with DATABASE_URL set, output captured (wide, so lines do not wrap)."""
    return subprocess.run(
        [sys.executable, "-m", "monomcp_cli.main", *args],
        env={**os.environ, "DATABASE_URL": database_url, "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        timeout=120,
    )
