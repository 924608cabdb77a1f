"""`make bench`: the gateway against a raw no-op upstream and a bare `mcp` SDK no-op upstream,
each called directly and through the gateway in alternating rounds of one run, at c=1/8/32,
in both protocol eras, on Postgres (when one answers) and SQLite. Reports throughput ratios,
added latency, CPU per call of every process (front, policy service, Postgres backends,
upstream, load generator; from /proc), peak RSS and the time to the first call, and writes
docs/benchmarks.md keeping the previous run's figures beside the new ones.

Environment: MONOMCP_BENCH_SECONDS (per measurement, default 2), MONOMCP_BENCH_ROUNDS
(alternating direct/gateway rounds, default 2), MONOMCP_BENCH_CONCURRENCY (default "1,8,32"),
MONOMCP_BENCH_POSTGRES_URL (default: local Postgres if reachable), MONOMCP_BENCH_FRONT_DIR
(run the front from another checkout, e.g. an older commit, for a before/after on the same box;
MONOMCP_BENCH_FRONT_LABEL names it in the report).
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench import floor, loadgen, report
from bench.policy_load import authorize_load
from bench.procs import cpu_seconds, free_port, rss_mib, wait_port
from policy_service.client import PolicyClient

SECONDS = float(os.environ.get("MONOMCP_BENCH_SECONDS", "2"))
ROUNDS = int(os.environ.get("MONOMCP_BENCH_ROUNDS", "2"))
CONCURRENCY = tuple(int(c) for c in os.environ.get("MONOMCP_BENCH_CONCURRENCY", "1,8,32").split(","))
ERAS = ("2025-11-25", "2026-07-28")
OPERATOR = "bench-operator-" + uuid.uuid4().hex
ROOT = Path(__file__).resolve().parent.parent
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
UPSTREAMS = {"raw": "bench.raw_upstream", "sdk": "bench.noop_upstream"}
FRONT_DIR = Path(os.environ.get("MONOMCP_BENCH_FRONT_DIR", ROOT))


async def postgres_url() -> str | None:
    url = os.environ.get("MONOMCP_BENCH_POSTGRES_URL", PG_DEFAULT)
    name = "monomcp_bench_" + uuid.uuid4().hex[:8]
    try:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres", timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name


async def drop_postgres(url: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def postgres_pids(url: str) -> list[int]:
    """The Postgres backends serving the bench database (their CPU counts as the gateway's)."""
    if not url.startswith("postgresql"):
        return []
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", url.rsplit("/", 1)[1])
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stack:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.policy_port, self.front_port = free_port(), free_port()
        self.upstream_ports = {name: free_port() for name in UPSTREAMS}
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MONOMCP_OPERATOR_TOKEN": OPERATOR,
            "MONOMCP_POLICY_ADDR": f"127.0.0.1:{self.policy_port}",
            "MONOMCP_AUDIT_DIGEST_INTERVAL_SECONDS": "3600",
            "MONOMCP_REQUEST_STATE_KEY": "bench-request-state-key",
            # The load generator is one key of one org at full speed: lift the per-key and per-org limits.
            "MONOMCP_RATE_LIMIT_PER_SECOND": "0",
            "MONOMCP_MAX_CONCURRENT_PER_KEY": "0",
            "MONOMCP_ORG_RATE_LIMIT_PER_SECOND": "0",
            "MONOMCP_MAX_CONCURRENT_PER_ORG": "0",
            "MONOMCP_BACKEND_ALLOW_PRIVATE": "true",  # the bench upstreams listen on loopback
        }

    def spawn(self, name: str, *args: str, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, *args], env=self.env, cwd=cwd, stdout=subprocess.DEVNULL)
        self.procs[name] = proc
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def seed(stack: Stack) -> str:
    async with PolicyClient(f"127.0.0.1:{stack.policy_port}", OPERATOR, timeout=30) as op:
        await op.create_org("bench", "Bench")
        for name, port in stack.upstream_ports.items():
            await op.upsert_toolkit(
                "bench",
                name,
                visibility="public",
                backend_url=f"http://127.0.0.1:{port}/mcp",
                backend_timeout_seconds=10,
            )
            tool = {"name": "noop", "input_schema_json": '{"type":"object","properties":{}}'}
            await op.sync_tools("bench", name, [{**tool, "default_permission": "always_allow"}])
        service = await op.create_service_identity("bench-front", ["front"])
        stack.env["MONOMCP_SERVICE_TOKEN"] = service.secret
        return (await op.create_api_key("bench", "bench", "member")).secret


async def first_call_seconds(port: int, token: str, started: float) -> float:
    while True:
        try:
            result = await loadgen.run("127.0.0.1", port, "/bench/sdk/mcp", token, 1, 0.001)
            if result.requests and not result.errors:
                return time.perf_counter() - started
        except OSError:
            pass
        await asyncio.sleep(0.01)


async def policy_rpcs(stack: Stack, pid: int, token: str, complete: bool) -> report.PolicyRun:
    """The policy RPCs alone at c=32, on CallStream as the front sends them (ADR 0029):
    AuthorizeToolCall with its durable `started` row, or authorize + complete pairs; with the
    policy service's CPU per call from /proc."""
    addr, service = f"127.0.0.1:{stack.policy_port}", stack.env["MONOMCP_SERVICE_TOKEN"]
    before = cpu_seconds(pid)
    result = await authorize_load(addr, service, token, "sdk", 32, SECONDS, complete=complete, stream=True)
    return report.PolicyRun(result, (cpu_seconds(pid) - before) * 1000 / max(result.requests, 1))


async def measure_gateway(stack: Stack, token: str, upstream: str, era: str, c: int) -> dict[str, Any]:
    """Alternating rounds of direct and gateway runs; CPU per call of each process over the gateway runs."""
    pids = {
        "front": [stack.procs["front"].pid],
        "policy": [stack.procs["policy"].pid],
        "postgres": await postgres_pids(stack.database_url),
        "upstream": [stack.procs[upstream].pid],
    }
    direct, gateway = loadgen.Result(), loadgen.Result()
    cpu = dict.fromkeys([*pids, "loadgen"], 0.0)
    direct_cpu = {"upstream": 0.0, "loadgen": 0.0}
    port = stack.upstream_ports[upstream]
    for _ in range(ROUNDS):
        before_up, before_self = cpu_seconds(pids["upstream"][0]), own_cpu()
        direct.add(await loadgen.run("127.0.0.1", port, "/mcp", None, c, SECONDS, era))
        direct_cpu["upstream"] += cpu_seconds(pids["upstream"][0]) - before_up
        direct_cpu["loadgen"] += own_cpu() - before_self
        before = {p: cpu_seconds(p) for v in pids.values() for p in v}
        before_self = own_cpu()
        gateway.add(await loadgen.run("127.0.0.1", stack.front_port, f"/bench/{upstream}/mcp", token, c, SECONDS, era))
        for k, v in pids.items():  # a process that went away meanwhile counts nothing
            cpu[k] += sum(max(cpu_seconds(p) - before[p], 0.0) for p in v)
        cpu["loadgen"] += own_cpu() - before_self
    per_call = {k: v * 1000 / max(gateway.requests, 1) for k, v in cpu.items()}
    direct_per_call = {k: v * 1000 / max(direct.requests, 1) for k, v in direct_cpu.items()}
    return {"direct": direct, "gateway": gateway, "cpu": per_call, "direct_cpu": direct_per_call}


async def bench_database(label: str, database_url: str, floor_ms: floor.Floor) -> dict[str, Any]:
    from policy_service.storage.migrate import upgrade_async

    await upgrade_async(database_url)
    stack = Stack(database_url)
    out: dict[str, Any] = {"label": label, "rows": [], "floor": floor_ms}
    try:
        stack.spawn("policy", "-m", "monomcp_cli.main", "serve", "policy", "--listen", f"127.0.0.1:{stack.policy_port}")
        for name, module in UPSTREAMS.items():
            stack.spawn(name, "-m", module, str(stack.upstream_ports[name]))
        wait_port(stack.policy_port)
        for port in stack.upstream_ports.values():
            wait_port(port)
        token = await seed(stack)
        started = time.perf_counter()
        listen = f"127.0.0.1:{stack.front_port}"
        stack.spawn("front", "-m", "monomcp_cli.main", "serve", "front", "--listen", listen, cwd=FRONT_DIR)
        out["first_call_s"] = await first_call_seconds(stack.front_port, token, started)
        pid = stack.procs["policy"].pid
        await authorize_load(  # warm: the stream opened, the caches filled
            f"127.0.0.1:{stack.policy_port}", stack.env["MONOMCP_SERVICE_TOKEN"], token, "sdk", 8, 0.5, True, True
        )
        out["authorize"] = await policy_rpcs(stack, pid, token, complete=False)
        out["authorize_complete"] = await policy_rpcs(stack, pid, token, complete=True)
        print(report.policy_line(out["authorize"], "AuthorizeToolCall", "authorize"), flush=True)
        print(report.policy_line(out["authorize_complete"], "AuthorizeToolCall + CompleteToolCall", "pair"), flush=True)
        for era in ERAS:
            for upstream in UPSTREAMS:
                await loadgen.run("127.0.0.1", stack.front_port, f"/bench/{upstream}/mcp", token, 8, 0.5, era)
                for c in CONCURRENCY:
                    row = await measure_gateway(stack, token, upstream, era, c)
                    out["rows"].append({"era": era, "upstream": upstream, "c": c, **row})
                    print(report.row_line(out["rows"][-1]), flush=True)
        out["rss"] = {name: rss_mib(proc.pid) for name, proc in stack.procs.items()}
    finally:
        stack.stop()
    return out


async def main() -> None:
    results = []
    pg = await postgres_url()
    floor_ms = await asyncio.to_thread(floor.measure, pg is not None)  # the box as quiet as the cells
    try:
        if pg:
            results.append(await bench_database("Postgres", pg, floor_ms))
        with tempfile.TemporaryDirectory() as tmp:
            results.append(await bench_database("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db", floor_ms))
    finally:
        if pg:
            await drop_postgres(pg)
    target = ROOT / "docs" / "benchmarks.md"
    previous = target.read_text() if target.exists() else ""
    front = "" if FRONT_DIR == ROOT else os.environ.get("MONOMCP_BENCH_FRONT_LABEL", str(FRONT_DIR))
    text = report.render(results, SECONDS, ROUNDS, previous, front)
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)
    print(text)


if __name__ == "__main__":
    asyncio.run(main())
