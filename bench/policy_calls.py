"""AuthorizeToolCall (+ CompleteToolCall) against a real policy service process on Postgres,
with the policy process's CPU per call: the policy half of the call path, measured alone.

    uv run python -m bench.policy_calls            # c=32 and c=1, 3 alternating rounds
Environment: MONOMCP_BENCH_SECONDS (per round, default 4), MONOMCP_BENCH_ROUNDS (default 3).
Each measurement runs with the client on unary/CallBatch RPCs and on CallStream (ADR 0029),
alternated within each round; the client's CPU per call is this process's.
"""

from __future__ import annotations

import asyncio
import os
import statistics

from bench import loadgen
from bench.policy_load import authorize_load
from bench.procs import cpu_seconds, wait_port
from bench.run import OPERATOR, Stack, drop_postgres, own_cpu, postgres_url
from policy_service.client import PolicyClient

SECONDS = float(os.environ.get("MONOMCP_BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("MONOMCP_BENCH_ROUNDS", "3"))


async def seed(stack: Stack, backend_url: str = "http://127.0.0.1:9/mcp") -> str:
    """One public toolkit "noop" with one always-allowed tool "noop"; returns a member's key."""
    async with PolicyClient(f"127.0.0.1:{stack.policy_port}", OPERATOR, timeout=30) as op:
        await op.create_org("bench", "Bench")
        await op.upsert_toolkit(
            "bench", "noop", visibility="public", backend_url=backend_url, backend_timeout_seconds=10
        )
        tool = {"name": "noop", "input_schema_json": '{"type":"object","properties":{}}'}
        await op.sync_tools("bench", "noop", [{**tool, "default_permission": "always_allow"}])
        service = await op.create_service_identity("bench-front", ["front"])
        stack.env["MONOMCP_SERVICE_TOKEN"] = service.secret
        return (await op.create_api_key("bench", "bench", "member")).secret


async def one(
    pid: int, addr: str, service: str, token: str, concurrency: int, complete: bool, stream: bool
) -> tuple[loadgen.Result, float, float]:
    before, before_self = cpu_seconds(pid), own_cpu()
    result = await authorize_load(addr, service, token, "noop", concurrency, SECONDS, complete=complete, stream=stream)
    cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(result.requests, 1)
    client_ms = (own_cpu() - before_self) * 1000 / max(result.requests, 1)
    return result, cpu_ms, client_ms


async def main() -> None:
    database_url = await postgres_url()
    if database_url is None:
        raise SystemExit("needs Postgres on 127.0.0.1:5432")
    from policy_service.storage.migrate import upgrade_async

    stack = Stack(database_url)
    try:
        await upgrade_async(database_url)
        listen = f"127.0.0.1:{stack.policy_port}"
        policy = stack.spawn("policy", "-m", "monomcp_cli.main", "serve", "policy", "--listen", listen)
        wait_port(stack.policy_port)
        token = await seed(stack)
        addr = f"127.0.0.1:{stack.policy_port}"
        service = stack.env["MONOMCP_SERVICE_TOKEN"]
        await authorize_load(addr, service, token, "noop", 8, 1.0, complete=True)  # warm up
        rows: dict[str, list[tuple[float, float, float, float, float]]] = {}
        for _ in range(ROUNDS):
            for label, c, complete in (
                ("authorize c=32", 32, False),
                ("authorize+complete c=32", 32, True),
                ("authorize+complete c=1", 1, True),
                ("authorize c=1", 1, False),
            ):
                for stream in (False, True):
                    name = f"{label}, {'stream' if stream else 'unary/batch'}"
                    r, cpu, client = await one(policy.pid, addr, service, token, c, complete, stream)
                    rows.setdefault(name, []).append((r.rps, r.percentile(50), r.percentile(99), cpu, client))
                    if r.errors:
                        print(f"  {name}: {r.errors} errors")
        print("| measurement | calls/s | p50 ms | p99 ms | policy CPU ms/call | client CPU ms/call |")
        print("|---|---|---|---|---|---|")
        for label, values in rows.items():
            med = [statistics.median(v[i] for v in values) for i in range(5)]
            print(f"| {label} | {med[0]:,.0f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.3f} | {med[4]:.3f} |")
    finally:
        stack.stop()
        await drop_postgres(database_url)


if __name__ == "__main__":
    asyncio.run(main())
