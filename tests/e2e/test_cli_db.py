"""`monomcp db upgrade|check` as an operator meets them: one clear line, never a traceback."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.support.migrations import monomcp_on
from tests.support.servers import free_port


def test_check_reports_the_revision_before_and_after_upgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    before = monomcp_on(url, "db", "check")
    assert before.returncode == 1 and "schema revision none" in before.stdout
    assert monomcp_on(url, "db", "upgrade").returncode == 0
    after = monomcp_on(url, "db", "check")
    assert after.returncode == 0 and "schema revision" in after.stdout and "none" not in after.stdout


def test_the_policy_service_refuses_a_database_without_its_schema(tmp_path: Path) -> None:
    """It used to start and log a traceback a second per missing table."""
    free = f"127.0.0.1:{free_port()}"
    for name, prepare, said in (
        ("absent.db", None, "no database at"),
        ("empty.db", "", "the database has no schema yet"),
        ("behind.db", "0011", "the database's schema (0011) is behind this release's"),
    ):
        path = tmp_path / name
        url = f"sqlite+aiosqlite:///{path}"
        if prepare == "":
            sqlite3.connect(path).close()  # a file, no tables
        elif prepare:
            assert monomcp_on(url, "db", "upgrade").returncode == 0
            with sqlite3.connect(path) as conn:
                conn.execute("UPDATE alembic_version SET version_num = ?", (prepare,))
        refused = monomcp_on(url, "serve", "policy", "--listen", free)
        assert refused.returncode == 2, (name, refused.stdout, refused.stderr)
        assert said in refused.stdout and "monomcp db upgrade" in refused.stdout, (name, refused.stdout)
        assert "Traceback" not in refused.stdout + refused.stderr


@pytest.mark.skipif(not POSTGRES_URL, reason="MONOMCP_TEST_POSTGRES_URL not set")
def test_a_missing_postgres_database_is_one_line_and_can_be_created() -> None:
    name = f"monomcp_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    missing = monomcp_on(url, "db", "upgrade")
    assert missing.returncode == 1 and "Traceback" not in missing.stdout + missing.stderr
    assert f"database '{name}' does not exist" in missing.stdout and "--create" in missing.stdout
    try:
        assert monomcp_on(url, "db", "upgrade", "--create").returncode == 0
        assert monomcp_on(url, "db", "check").returncode == 0
    finally:
        asyncio.run(_drop(name))


async def _drop(name: str) -> None:
    base = make_url(POSTGRES_URL)
    conn = await asyncpg.connect(host=base.host, port=base.port or 5432, user=base.username, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_the_policy_service_starts_while_its_database_does_not_answer_yet() -> None:
    """A database server that does not answer (yet) is not a schema problem: the service
    starts and reports NOT_SERVING until it answers (docs/operations.md), as it did before the
    schema check; only an answering database without this release's schema is refused."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    listen = f"127.0.0.1:{free_port()}"
    down = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"  # nothing listens there
    env = {**os.environ, "DATABASE_URL": down, "MONOMCP_OPERATOR_TOKEN": "operator-" + uuid.uuid4().hex}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monomcp_cli.main", "serve", "policy", "--listen", listen],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(listen) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)  # exits 2 instead on the old code
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "cannot start the policy service" not in output
