"""`make bench-scale`: is a call as fast with a huge catalogue and a huge audit log?

Postgres only. Grows one toolkit's catalogue and the audit log with COPY (rows spread over
the last 12 months, so over 12 month partitions, ADR 0022), and at each size measures
AuthorizeToolCall + CompleteToolCall pairs at c=1 (p50/p99, policy CPU per pair), the first
call after the catalogue changed (the snapshot reload), one ListTools page, and prints
EXPLAIN ANALYZE of the hot queries: the completion path, the audit viewer's queries, the
call_id lookup, digest writing and chain verification, the sweeper and retention.

Through a real front over HTTP (bench/scale_front.py) at each size too: c=1 `tools/call` of
the big toolkit's last tool, in windows alternating with a 10-tool reference toolkit's
(p50/p99, calls/s, front, policy and Postgres CPU per call from /proc), the `tools/list`
first page (latency, size) and, up to MONOMCP_SCALE_WALK_MAX tools (default 10,000), a walk
of every page by cursor.

Environment: MONOMCP_SCALE_TOOLS (default "10,10000,100000"), MONOMCP_SCALE_AUDIT_ROWS
(default "0,10000000": several minutes of COPY), MONOMCP_BENCH_SECONDS (per measurement,
default 4), MONOMCP_BENCH_ROUNDS (alternating gateway windows per size, default 3).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import scale_front
from bench.policy_calls import seed
from bench.policy_load import authorize_load
from bench.procs import cpu_seconds, wait_port
from bench.report import machine
from bench.run import OPERATOR, Stack, drop_postgres, postgres_url
from policy_service.audit.partitions import create_partition_sql, months
from policy_service.audit.sink_postgres import _COMPLETE
from policy_service.audit.sinks import COLUMNS
from policy_service.client import PolicyClient

SECONDS = float(os.environ.get("MONOMCP_BENCH_SECONDS", "4"))
TOOL_SIZES = [int(n) for n in os.environ.get("MONOMCP_SCALE_TOOLS", "10,10000,100000").split(",")]
AUDIT_SIZES = [int(n) for n in os.environ.get("MONOMCP_SCALE_AUDIT_ROWS", "0,10000000").split(",")]
ROUNDS = int(os.environ.get("MONOMCP_BENCH_ROUNDS", "3"))
WALK_MAX = int(os.environ.get("MONOMCP_SCALE_WALK_MAX", "10000"))
REF_TOOLS = 10
MONTHS = 12
_CHUNK = 50_000


def _completion_args(n: int) -> list[object]:
    # Completions of calls that do not exist: the plan shows the per-partition call_id probes.
    ids = [uuid.uuid4().hex for _ in range(n)]
    return [
        ids,
        ids,
        ["svc"] * n,
        ["{}"] * n,
        ["[]"] * n,
        ["ok"] * n,
        [""] * n,
        [1.0] * n,
        [datetime.now(UTC).replace(tzinfo=None)] * n,
    ]


_SCHEMA = json.dumps({"type": "object", "properties": {"q": {"type": "string", "description": "query"}}})

_VIEWER = (
    "SELECT l.*, c.* FROM audit_request_logs l LEFT JOIN audit_request_logs c "
    "ON c.completes = l.call_id AND c.completes != '' AND c.call_at = l.call_at "
    "WHERE l.completes = '' {where} ORDER BY l.seq DESC LIMIT 51"
)
_CALL = "(SELECT call_id FROM audit_request_logs WHERE seq = (SELECT max(seq) / 2 FROM audit_request_logs))"
_MID = "(SELECT max(seq) / 2 FROM audit_request_logs)"

# label → (SQL, args); run under EXPLAIN ANALYZE in a transaction that is rolled back.
HOT_QUERIES: dict[str, tuple[str, list[Any]]] = {
    "completion (INSERT…SELECT over a batch of 32)": (_COMPLETE, _completion_args(32)),
    "completion conflict check (unique index)": (
        "SELECT 1 FROM audit_request_logs WHERE completes = $1 AND completes != ''",
        ["0" * 32],
    ),
    "call_id lookup (a call in the middle of the log)": (
        f"SELECT * FROM audit_request_logs WHERE call_id = {_CALL} LIMIT 1",
        [],
    ),
    "viewer: an org's newest page": (_VIEWER.format(where="AND l.org_slug = 'bench'"), []),
    "viewer: a small org's newest page": (_VIEWER.format(where="AND l.org_slug = 'small'"), []),
    "viewer: a time range": (
        _VIEWER.format(
            where="AND l.created_at >= now() - interval '40 days' AND l.created_at < now() - interval '39 days'"
        ),
        [],
    ),
    "viewer: one call by call_id": (_VIEWER.format(where=f"AND l.call_id = {_CALL}"), []),
    "viewer: a status filter (completion folded in)": (
        _VIEWER.format(where="AND coalesce(c.status, l.status) = 'error'"),
        [],
    ),
    "digest: unsettled rows after the last digest": (
        "SELECT min(seq) FROM audit_request_logs WHERE seq > (SELECT max(seq) - 1000 FROM audit_request_logs) "
        "AND created_at >= now() - interval '5 seconds'",
        [],
    ),
    "verify: the rows of one digest (10,000 seqs)": (
        f"SELECT * FROM audit_request_logs WHERE seq > {_MID} AND seq <= {_MID} + 10000 ORDER BY seq",
        [],
    ),
    "sweeper: calls that crossed the abandon cutoff since the last round, with no completion": (
        "SELECT l.* FROM audit_request_logs l LEFT JOIN audit_request_logs c "
        "ON c.completes = l.call_id AND c.completes != '' AND c.call_at = l.call_at WHERE l.status = 'started' "
        "AND l.created_at < now() - interval '1 hour' AND l.created_at >= now() - interval '1 hour 10 minutes' "
        "AND l.call_at >= now() - interval '1 hour 10 minutes' AND c.seq IS NULL LIMIT 1000",
        [],
    ),
    "sweeper: the first round of a process (7 days back)": (
        "SELECT l.* FROM audit_request_logs l LEFT JOIN audit_request_logs c "
        "ON c.completes = l.call_id AND c.completes != '' AND c.call_at = l.call_at WHERE l.status = 'started' "
        "AND l.created_at < now() - interval '1 hour' AND l.created_at >= now() - interval '7 days' "
        "AND l.call_at >= now() - interval '7 days' AND c.seq IS NULL LIMIT 1000",
        [],
    ),
    "retention: newest row of calls before a month boundary": (
        "SELECT max(seq) FROM audit_request_logs WHERE call_at < date_trunc('month', now()) - interval '10 months'",
        [],
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


async def grow_tools(conn: asyncpg.Connection, start: int, stop: int, toolkit: str = "noop") -> None:
    toolkit_id = await conn.fetchval("SELECT id FROM toolkits WHERE slug = $1", toolkit)
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
    """Calls (a started row and its completion) spread evenly over the last MONTHS months, in
    time order like the live log; 1 in 50 in a small org, 1 in 100 an error."""
    now = datetime.now(UTC).replace(tzinfo=None)
    first_day = now - timedelta(days=30 * MONTHS)
    for month in months(first_day, now):
        await conn.execute(create_partition_sql(month))
    step = (now - first_day) / max(stop - start, 1)
    index = {name: i for i, name in enumerate(COLUMNS)}
    base: list[Any] = [""] * len(COLUMNS)
    for name, value in {
        "source": "mcp",
        "method": "tools/call",
        "tool": "tool_000001",
        "toolkit_slug": "noop",
        "toolkit_org_slug": "bench",
        "actor_type": "api_key",
        "actor_id": "key_bench",
        "permission": "always_allow",
        "decision": "allow",
        "service_id": "svc",
        "redacted_paths": "[]",
        "duration_ms": 1.0,
        "completed_at": None,
    }.items():
        base[index[name]] = value
    i_call, i_done, i_status, i_org = index["call_id"], index["completes"], index["status"], index["org_slug"]
    i_created, i_at, i_completed = index["created_at"], index["call_at"], index["completed_at"]
    i_request, i_response = index["request_payload"], index["response_payload"]
    for first in range(start, stop, _CHUNK):
        rows = []
        for n in range(first, min(stop, first + _CHUNK), 2):
            at = first_day + step * (n - start)
            call_id = secrets.token_hex(16)
            started = list(base)
            started[i_call], started[i_status], started[i_created], started[i_at] = call_id, "started", at, at
            started[i_org] = "small" if n % 100 == 0 else "bench"
            started[i_request] = '{"name":"tool_000001","arguments":{"q":"x"}}'
            done = list(started)
            done[i_call], done[i_done], done[i_request], done[i_response] = secrets.token_hex(16), call_id, "", "{}"
            done[i_status] = "error" if n % 200 == 0 else "ok"
            done[i_created] = done[i_completed] = at + timedelta(milliseconds=2)
            rows += [tuple(started), tuple(done)]
        await conn.copy_records_to_table("audit_request_logs", records=rows, columns=COLUMNS)
    # The steady state of a big log: vacuumed (autovacuum would otherwise work through the
    # freshly copied rows while the latency is measured).
    await conn.execute("VACUUM (ANALYZE) audit_request_logs")


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
        tx = conn.transaction()
        await tx.start()
        try:
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, *args)
        finally:
            await tx.rollback()
        out += [f"- {label}:", "", *(f"      {row[0]}" for row in plan), ""]
    return out


PAIRS_HEAD = [
    "| tools × audit rows | pairs/s c=1 | p50 ms | p99 ms | policy CPU ms/pair | first call ms "
    "| ListTools page ms | errors |",
    "|---|---|---|---|---|---|---|---|",
]
GATEWAY_HEAD = [
    "| tools × audit rows | calls/s | p50 ms | p99 ms | CPU ms/call net of idle: front / policy / Postgres "
    "| ref (10 tools) calls/s | p50 ms | p99 ms | CPU ms/call | big/ref p50 | big/ref p99 | errors |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]
LIST_HEAD = [
    "| tools × audit rows | first page p50 ms | max ms | page size | next cursor | walk of every page |",
    "|---|---|---|---|---|---|",
]


async def measure_gateway(stack: Stack, token: str, tools: int, label: str) -> tuple[str, str]:
    """(gateway line, tools/list line) at one size."""
    pids = {"front": stack.procs["front"].pid, "policy": stack.procs["policy"].pid}
    targets = {"big": ("noop", f"tool_{tools - 1:06d}"), "ref": ("ref", f"tool_{REF_TOOLS - 1:06d}")}
    w = await scale_front.calls(stack.front_port, token, targets, pids, stack.database_url, SECONDS, ROUNDS)
    big, ref = w["big"].result, w["ref"].result
    ratio50 = big.percentile(50) / max(ref.percentile(50), 1e-9)
    ratio99 = big.percentile(99) / max(ref.percentile(99), 1e-9)
    gateway = (
        f"| {label} | {w['big'].cells()} | {w['ref'].cells()} | {ratio50:.2f} | {ratio99:.2f} "
        f"| {big.errors} / {ref.errors} |"
    )
    listed = await scale_front.listing(stack.front_port, token, "noop", 20, walk=tools <= WALK_MAX)
    walk = (
        f"{listed.walk_ms:,.0f} ms, {listed.walk_pages} pages, {listed.walk_tools:,} tools"
        if listed.walk_ms is not None
        else "—"
    )
    listing = (
        f"| {label} | {listed.first_page_p50_ms:.2f} | {listed.first_page_max_ms:.1f} | {listed.page_size} "
        f"| {'yes' if listed.has_next else 'no'} | {walk} |"
    )
    return gateway, listing


async def add_reference(stack: Stack, conn: asyncpg.Connection) -> None:
    """The 10-tool toolkit `ref` on the same upstream as `noop`."""
    from policy_service.client import PolicyClient as Client

    async with Client(f"127.0.0.1:{stack.policy_port}", OPERATOR, timeout=30) as op:
        await op.upsert_toolkit(
            "bench", "ref", visibility="public", backend_url=_backend(stack), backend_timeout_seconds=10
        )
    await grow_tools(conn, 0, REF_TOOLS, "ref")


def _backend(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.upstream_ports['raw']}/mcp"


async def main() -> None:
    database_url = await postgres_url()
    if database_url is None:
        raise SystemExit("bench-scale needs Postgres on 127.0.0.1:5432")
    from policy_service.storage.migrate import upgrade_async

    stack = Stack(database_url)
    pairs, gateway, listing = list(PAIRS_HEAD), list(GATEWAY_HEAD), list(LIST_HEAD)
    loads: list[str] = []
    try:
        await upgrade_async(database_url)
        listen = f"127.0.0.1:{stack.policy_port}"
        policy = stack.spawn("policy", "-m", "monomcp_cli.main", "serve", "policy", "--listen", listen)
        stack.spawn("raw", "-m", "bench.raw_upstream", str(stack.upstream_ports["raw"]))
        wait_port(stack.policy_port)
        wait_port(stack.upstream_ports["raw"])
        token = await seed(stack, _backend(stack))  # one tool, "noop"
        conn = await asyncpg.connect(**_connect_args(database_url))
        await add_reference(stack, conn)
        front_listen = f"127.0.0.1:{stack.front_port}"
        stack.spawn("front", "-m", "monomcp_cli.main", "serve", "front", "--listen", front_listen)
        wait_port(stack.front_port)
        tools, rows = 1, 0
        for audit_size in AUDIT_SIZES:
            await grow_audit(conn, rows, audit_size)
            rows = max(rows, audit_size)
            for size in TOOL_SIZES if audit_size == AUDIT_SIZES[0] else TOOL_SIZES[-1:]:
                await grow_tools(conn, tools, size)
                tools = max(tools, size)
                label = f"{tools:,} × {rows:,}"
                pairs.append(await measure(stack, policy.pid, token, label))
                print(pairs[-1], flush=True)
                lines = await measure_gateway(stack, token, tools, label)
                gateway.append(lines[0])
                listing.append(lines[1])
                loads.append(f"{label}: " + " / ".join(f"{x:.1f}" for x in os.getloadavg()))
                print(*lines, sep="\n", flush=True)
        explained = await explain(conn)
        await conn.close()
    finally:
        stack.stop()
        await drop_postgres(database_url)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n{when}; {machine()}; {SECONDS:g} s windows, {ROUNDS} rounds")
    print("Load average (1/5/15 min) after each size: " + "; ".join(loads))
    print("\nAuthorize + complete pairs over gRPC, c=1:\n", *pairs, sep="\n")
    print("\nThrough the front, c=1 tools/call of the big toolkit's last tool, and of the reference toolkit's:\n")
    print(*gateway, sep="\n")
    print("\ntools/list of the big toolkit through the front:\n", *listing, sep="\n")
    print("\nEXPLAIN of the hot queries at the largest size:\n", *explained, sep="\n")


if __name__ == "__main__":
    asyncio.run(main())
