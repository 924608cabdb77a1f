"""`monomcp audit retention --before DATE` and `monomcp audit partitions` as an operator uses
them (ADR 0022): old calls go (a dropped month partition on Postgres), `audit verify` still
passes, and the retention itself is an audited admin action."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

from sqlalchemy import text

from policy_service.api.server import start
from policy_service.audit import partitions
from policy_service.client import PolicyClient
from policy_service.storage.database import create_engine
from tests.conftest import OPERATOR, make_settings

MONOMCP = Path(sys.executable).parent / "monomcp"
KEY = "retention-cli-signing-key-" + "k" * 16


async def _monomcp(port: int, *args: str) -> tuple[int, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MONOMCP_", "DATABASE_", "JWT_"))},
        "MONOMCP_POLICY_ADDR": f"127.0.0.1:{port}",
        "MONOMCP_TOKEN": OPERATOR,
    }
    proc = await asyncio.create_subprocess_exec(
        str(MONOMCP), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_retention_command_removes_old_calls_and_verify_still_passes(database_url: str) -> None:
    settings = make_settings(
        database_url,
        MONOMCP_AUDIT_SIGNING_KEY=KEY,
        MONOMCP_AUDIT_DIGEST_SETTLE_SECONDS=0,
        MONOMCP_AUDIT_RETENTION_DAYS=36500,  # configured, never reached by the maintenance round
    )
    live = await start(settings, "127.0.0.1:0")
    engine = create_engine(database_url)
    postgres = engine.dialect.name == "postgresql"
    try:
        code, out = await _monomcp(live.port, "orgs", "create", "acme")
        assert code == 0, out
        async with engine.begin() as conn:  # that action was long ago, in a month of its own
            if postgres:
                await conn.execute(text(partitions.create_partition_sql(dt.datetime(2020, 1, 1))))
            await conn.execute(text("UPDATE audit_request_logs SET call_at = '2020-01-10 00:00:00'"))
        code, out = await _monomcp(live.port, "orgs", "create", "globex")
        assert code == 0, out
        assert await live.digester.write_digest() is not None

        code, out = await _monomcp(live.port, "audit", "retention", "--before", "2020-02-15", "--yes")

        assert code == 0, out
        assert "1 rows of calls before" in out
        assert ("dropped partition audit_request_logs_p2020_01" in out) == postgres
        code, out = await _monomcp(live.port, "audit", "verify")
        assert code == 0 and "audit log intact" in out, out
        async with PolicyClient(f"127.0.0.1:{live.port}", OPERATOR) as operator:
            methods = [r.method for r in (await operator.query_audit("")).records]
        assert "admin/ApplyAuditRetention" in methods and "admin/CreateOrg" in methods

        code, out = await _monomcp(live.port, "audit", "partitions", "--ahead", "2")
        assert code == 0, out
        assert ("audit_request_logs_default" in out) == postgres
    finally:
        await engine.dispose()
        await live.stop(0.5)


async def test_retention_refuses_where_it_is_not_configured(database_url: str) -> None:
    live = await start(make_settings(database_url), "127.0.0.1:0")
    try:
        code, out = await _monomcp(live.port, "audit", "retention", "--before", "2020-02-15", "--yes")
        assert code != 0 and "MONOMCP_AUDIT_RETENTION_DAYS" in out
        code, out = await _monomcp(live.port, "audit", "retention", "--before", "last tuesday", "--yes")
        assert code != 0 and "is not a date" in out
    finally:
        await live.stop(0.5)
