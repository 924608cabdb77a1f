"""The attack matrix shares one real stack per test module and database backend (SQLite
always, Postgres when MONOMCP_TEST_POSTGRES_URL is set), so hundreds of cases stay fast.
`database_url` is overridden at module scope; the suite's skip rule for Postgres applies."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from policy_service.storage.models import Base
from tests.conftest import BACKENDS, make_settings
from tests.support.attack_stack import JWT_AUDIENCE, JWT_ISSUER, Stack, attack_stack


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("attacks") / "monomcp.db"
        shutil.copy(_sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("_postgres_database")
    yield url
    asyncio.run(_truncate(url))


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(database_url: str) -> AsyncIterator[Stack]:
    settings = make_settings(
        database_url,
        JWT_ISSUER=JWT_ISSUER,
        JWT_AUDIENCE=JWT_AUDIENCE,
        MONOMCP_APPROVAL_WAIT_SECONDS=1.0,
        MONOMCP_TASK_RESULT_WAIT_SECONDS=2.0,
    )
    async with attack_stack(settings) as built:
        yield built
