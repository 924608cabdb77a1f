"""Migration 0013 (one account per email, whatever its case) on a database that already holds
case variants: `monomcp db upgrade` stops with one line naming them and the fix, leaves the
schema at 0012, and succeeds once the operator has kept one account per email; then no case
variant can be written again (ADR 0051)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Table, insert, text
from sqlalchemy.exc import IntegrityError

from policy_service.storage.database import create_engine
from policy_service.storage.migrate import alembic_config, revisions
from policy_service.storage.models import User
from tests.conftest import BACKENDS
from tests.support.migrations import database_at, monomcp_on

USERS: Table = User.__table__  # type: ignore[assignment]
KEEP, DROP, SOLO = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture(params=BACKENDS)
async def url_at_0012(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_at(request.param, tmp_path, "0012") as url:
        yield url


async def _sql(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _add_users(url: str, *users: tuple[str, str]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for user_id, email in users:
                await conn.execute(insert(USERS).values(id=user_id, email=email, display_name="", password_hash=""))
    finally:
        await engine.dispose()


async def test_upgrade_refuses_case_variants_naming_them_then_succeeds_once_one_is_kept(url_at_0012: str) -> None:
    url = url_at_0012
    await _add_users(url, (KEEP, "dup@example.com"), (DROP, "Dup@Example.com"), (SOLO, "Solo@example.com"))

    refused = monomcp_on(url, "db", "upgrade")

    said = refused.stdout.strip()
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stdout + refused.stderr and len(said.splitlines()) == 1, said
    assert "cannot upgrade" in said and f"dup@example.com (users {KEEP}, {DROP})" in said
    assert "solo@example.com" not in said and "docs/operations.md" in said and "monomcp db upgrade" in said
    assert (await asyncio.to_thread(revisions, url))[0] == "0012"  # nothing half-done

    await _sql(url, f"DELETE FROM users WHERE id = '{DROP}'")  # the fix docs/operations.md gives
    upgraded = monomcp_on(url, "db", "upgrade")
    assert upgraded.returncode == 0, (upgraded.stdout, upgraded.stderr)
    assert (await asyncio.to_thread(revisions, url))[0] == "0013"
    with pytest.raises(IntegrityError):
        await _add_users(url, (DROP, "DUP@example.COM"))
    with pytest.raises(IntegrityError):
        await _add_users(url, (DROP, "solo@EXAMPLE.com"))
    await _add_users(url, (DROP, "other@example.com"))

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0012")
    await _add_users(url, ("d" * 32, "Other@Example.com"))  # the index is gone again
