"""Backup and restore as docs/operations.md describes it: `pg_dump` of a live database,
`pg_restore` into a new one, and `monomcp audit verify` against the restored database
passes (with the digest export kept outside it); a row edited after the restore fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from policy_service.api.server import start
from policy_service.config import Settings
from tests.conftest import OPERATOR, POSTGRES_URL, make_settings
from tests.support.processes import throwaway_postgres

MONOMCP = Path(sys.executable).parent / "monomcp"
SIGNING_KEY = "backup-test-signing-key-" + "k" * 16

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL or not (shutil.which("pg_dump") and shutil.which("pg_restore")),
    reason="needs MONOMCP_TEST_POSTGRES_URL and pg_dump/pg_restore",
)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """A child process, awaited without blocking the loop the policy service runs in."""
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def _monomcp(policy_port: int, *args: str) -> tuple[int, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MONOMCP_", "DATABASE_", "JWT_"))},
        "MONOMCP_POLICY_ADDR": f"127.0.0.1:{policy_port}",
        "MONOMCP_TOKEN": OPERATOR,
        "MONOMCP_AUDIT_SIGNING_KEY": SIGNING_KEY,
    }
    return await _run(str(MONOMCP), *args, env=env)


def _settings(url: str) -> Settings:
    return make_settings(url, MONOMCP_AUDIT_SIGNING_KEY=SIGNING_KEY, MONOMCP_AUDIT_DIGEST_SETTLE_SECONDS=0)


@contextlib.asynccontextmanager
async def _empty_database(base_url: str) -> AsyncIterator[str]:
    """A new, empty database to restore into (dropped afterwards)."""
    base = make_url(base_url)
    name = f"monomcp_restore_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_libpq(base_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_libpq(base_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_pg_dump_and_restore_keep_the_audit_log_verifiable(tmp_path: Path) -> None:
    dump, export = tmp_path / "monomcp.dump", tmp_path / "digests.jsonl"
    async with throwaway_postgres(POSTGRES_URL) as source, _empty_database(POSTGRES_URL) as target:
        live = await start(_settings(source), "127.0.0.1:0")
        try:
            # Admin actions are audit rows in the chain; a digest seals them.
            code, out = await _monomcp(live.port, "orgs", "create", "acme")
            assert code == 0, out
            code, out = await _monomcp(live.port, "keys", "create", "ci", "--org", "acme", "--role", "member")
            assert code == 0, out
            assert await live.digester.write_digest() is not None
            code, out = await _monomcp(live.port, "audit", "digests", "export")
            assert code == 0, out
            export.write_text(out)
            # The backup, taken while the service runs.
            code, out = await _run("pg_dump", "--format=custom", f"--file={dump}", _libpq(source))
            assert code == 0, out
        finally:
            await live.stop(0.5)

        code, out = await _run("pg_restore", "--no-owner", f"--dbname={_libpq(target)}", str(dump))
        assert code == 0, out
        restored = await start(_settings(target), "127.0.0.1:0")
        try:
            code, out = await _monomcp(restored.port, "audit", "verify", "--against", str(export))
            assert code == 0, out
            assert "audit log intact" in out and " 0 rows" not in out
            # The check has teeth: an edited row in the restored copy is named.
            conn = await asyncpg.connect(_libpq(target))
            try:
                await conn.execute("UPDATE audit_request_logs SET error = 'edited after the restore' WHERE seq = 1")
            finally:
                await conn.close()
            code, out = await _monomcp(restored.port, "audit", "verify")
            assert code == 1 and "row 1 edited" in out, out
        finally:
            await restored.stop(0.5)
