"""`make bench-scale`: is a call as fast with a huge catalogue and a huge audit log?

Postgres only. Grows one toolkit's catalogue and the audit log with COPY, and at each size
measures AuthorizeToolCall + CompleteToolCall pairs at c=1 (p50/p99, policy CPU per pair),
the first call after the catalogue changed (the snapshot reload), one ListTools page, and
prints EXPLAIN of the hot queries.

Environment: MONOMCP_SCALE_TOOLS (default "10,10000,100000"), MONOMCP_SCALE_AUDIT_ROWS
(default "0,1000000"; the issue's full run is "0,10000000"), MONOMCP_BENCH_SECONDS (per
measurement, default 4).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.policy_calls import seed
from bench.policy_load import authorize_load
from bench.procs import cpu_seconds, wait_port
from bench.run import Stack, drop_postgres, postgres_url
from policy_service.audit.sink_postgres import _COMPLETE
from policy_service.audit.sinks import COLUMNS
from policy_service.client import PolicyClient

SECONDS = float(os.environ.get("MONOMCP_BENCH_SECONDS", "4"))
TOOL_SIZES = [int(n) for n in os.environ.get("MONOMCP_SCALE_TOOLS", "10,10000,100000").split(",")]
AUDIT_SIZES = [int(n) for n in os.environ.get("MONOMCP_SCALE_AUDIT_ROWS", "0,1000000").split(",")]
_CHUNK = 50_000


def _completion_args(n: int) -> list[object]:
    ids = [uuid.uuid4().hex for _ in range(n)]
    return [ids, ids, ["svc"] * n, ["{}"] * n, ["[]"] * n, ["ok"] * n, [""] * n, [1.0] * n, [datetime(2026, 1, 1)] * n]


_SCHEMA = json.dumps({"type": "object", "properties": {"q": {"type": "string", "description": "query"}}})

HOT_QUERIES: dict[str, tuple[str, list[Any]]] = {
    "completion (INSERT…SELECT over a batch of 32)": (_COMPLETE, _completion_args(32)),
    "completion conflict check (unique index)": (
        "SELECT 1 FROM audit_request_logs WHERE completes = $1 AND completes != ''",
        ["0" * 32],
    ),
    "toolkit's tools (snapshot load)": (
        "SELECT id, name FROM tools WHERE toolkit_id = (SELECT id FROM toolkits WHERE slug = 'noop') AND kind = 'tool'",
        [],
    ),
    "role overrides of a toolkit (snapshot load)": (
        "SELECT r.tool_id, r.permission FROM role_overrides r JOIN tools t ON t.id = r.tool_id "
        "WHERE r.role_id = $1 AND t.toolkit_id = $1 AND t.kind = 'tool'",
        ["x"],
    ),
    "API key (snapshot load)": ("SELECT * FROM api_keys WHERE id = $1", ["x"]),
}


def _connect_args(url: str) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": url.rsplit("/", 1)[1]}


async def grow_tools(conn: asyncpg.Connection, start: int, stop: int) -> None:
    toolkit_id = await conn.fetchval("SELECT id FROM toolkits WHERE slug = 'noop'")
    for first in range(start, stop, _CHUNK):
        rows = [
            (
                uuid.uuid4().hex,
                toolkit_id,
                "tool",
                f"tool_{i:06d}",
                "",
                f"Tool {i}",
                _SCHEMA,
                "",
                "",
                "always_allow",
                "",
            )
            for i in range(first, min(stop, first + _CHUNK))
        ]
        await conn.copy_records_to_table(
            "tools",
            records=rows,
            columns=[
                "id",
                "toolkit_id",
                "kind",
                "name",
                "title",
                "description",
                "input_schema_json",
                "output_schema_json",
                "annotations_json",
                "default_permission",
                "spec_json",
            ],
        )


async def grow_audit(conn: asyncpg.Connection, start: int, stop: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    template = {name: "" for name in COLUMNS} | {
        "source": "mcp",
        "method": "tools/call",
        "tool": "tool_000001",
        "toolkit_slug": "noop",
        "toolkit_org_slug": "bench",
        "org_slug": "bench",
        "request_payload": '{"name":"tool_000001","arguments":{}}',
        "redacted_paths": "[]",
        "status": "ok",
        "duration_ms": 1.0,
        "created_at": now,
        "completed_at": now,
    }
    for first in range(start, stop, _CHUNK):
        rows = []
        for _ in range(first, min(stop, first + _CHUNK), 2):  # a started row and its completion
            call_id = uuid.uuid4().hex
            rows.append(tuple((template | {"call_id": call_id, "status": "started"})[name] for name in COLUMNS))
            done = template | {"call_id": uuid.uuid4().hex, "completes": call_id, "request_payload": ""}
            rows.append(tuple(done[name] for name in COLUMNS))
        await conn.copy_records_to_table("audit_request_logs", records=rows, columns=COLUMNS)
    await conn.execute("ANALYZE audit_request_logs")


async def measure(stack: Stack, pid: int, token: str, label: str) -> str:
    addr = f"127.0.0.1:{stack.policy_port}"
    service = stack.env["MONOMCP_SERVICE_TOKEN"]
    async with PolicyClient(addr, timeout=60, service_token=service) as client:
        started = time.perf_counter()
        await client.authorize_tool_call(token, "bench", "noop", "noop", "{}")
        first_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        listed = await client.list_tools(token, "bench", "noop", page_size=500)
        page_ms = (time.perf_counter() - started) * 1000
    before = cpu_seconds(pid)
    result = await authorize_load(addr, service, token, "noop", 1, SECONDS, complete=True)
    cpu = (cpu_seconds(pid) - before) * 1000 / max(result.requests, 1)
    return (
        f"| {label} | {result.rps:,.0f} | {result.percentile(50):.2f} | {result.percentile(99):.2f} | {cpu:.2f} "
        f"| {first_ms:.0f} | {page_ms:.1f} ({len(listed.tools)} tools) | {result.errors} |"
    )


async def explain(conn: asyncpg.Connection) -> list[str]:
    out = []
    for label, (sql, args) in HOT_QUERIES.items():
        plan = await conn.fetch("EXPLAIN " + sql, *args)
        out += [f"- {label}:", "", *(f"      {row[0]}" for row in plan), ""]
    return out


async def main() -> None:
    database_url = await postgres_url()
    if database_url is None:
        raise SystemExit("bench-scale needs Postgres on 127.0.0.1:5432")
    from policy_service.storage.migrate import upgrade_async

    stack = Stack(database_url)
    lines = [
        "| tools × audit rows | pairs/s c=1 | p50 ms | p99 ms | policy CPU ms/pair | first call ms "
        "| ListTools page ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    try:
        await upgrade_async(database_url)
        listen = f"127.0.0.1:{stack.policy_port}"
        policy = stack.spawn("policy", "-m", "monomcp_cli.main", "serve", "policy", "--listen", listen)
        wait_port(stack.policy_port)
        token = await seed(stack)  # one tool, "noop"
        conn = await asyncpg.connect(**_connect_args(database_url))
        tools, rows = 1, 0
        for audit_size in AUDIT_SIZES:
            await grow_audit(conn, rows, audit_size)
            rows = max(rows, audit_size)
            for size in TOOL_SIZES if audit_size == AUDIT_SIZES[0] else TOOL_SIZES[-1:]:
                await grow_tools(conn, tools, size)
                tools = max(tools, size)
                lines.append(await measure(stack, policy.pid, token, f"{tools:,} × {rows:,}"))
                print(lines[-1], flush=True)
        lines += ["", "EXPLAIN of the hot queries at the largest size:", "", *(await explain(conn))]
        await conn.close()
    finally:
        stack.stop()
        await drop_postgres(database_url)
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
