"""`make bench`: the gateway against a no-op upstream, through the gateway and directly in
the same run, plus AuthorizeToolCall alone over gRPC. Writes docs/benchmarks.md.

Environment: MONOMCP_BENCH_SECONDS (per measurement, default 8),
MONOMCP_BENCH_POSTGRES_URL (default: local Postgres if reachable, else SQLite only).
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench import loadgen
from policy_service.client import PolicyClient

SECONDS = float(os.environ.get("MONOMCP_BENCH_SECONDS", "8"))
OPERATOR = "bench-operator-" + uuid.uuid4().hex
ROOT = Path(__file__).resolve().parent.parent
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise SystemExit(f"port {port} never opened")


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


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


class Stack:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.policy_port = free_port()
        self.front_port = free_port()
        self.upstream_port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MONOMCP_OPERATOR_TOKEN": OPERATOR,
            "MONOMCP_POLICY_ADDR": f"127.0.0.1:{self.policy_port}",
            "MONOMCP_CACHE_TTL_SECONDS": "0.5",
            "MONOMCP_AUDIT_DIGEST_INTERVAL_SECONDS": "3600",
            "MONOMCP_REQUEST_STATE_KEY": "bench-request-state-key",
            # The load generator is one key at full speed: lift the per-key limits.
            "MONOMCP_RATE_LIMIT_PER_SECOND": "0",
            "MONOMCP_MAX_CONCURRENT_PER_KEY": "0",
            "MONOMCP_BACKEND_ALLOW_PRIVATE": "true",  # the bench upstream listens on loopback
        }

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, *args], env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def seed(stack: Stack) -> str:
    async with PolicyClient(f"127.0.0.1:{stack.policy_port}", OPERATOR, timeout=30) as op:
        await op.create_org("bench", "Bench")
        await op.upsert_toolkit(
            "bench",
            "noop",
            visibility="public",
            backend_url=f"http://127.0.0.1:{stack.upstream_port}/mcp",
            backend_timeout_seconds=10,
        )
        await op.sync_tools(
            "bench",
            "noop",
            [
                {
                    "name": "noop",
                    "input_schema_json": '{"type":"object","properties":{}}',
                    "default_permission": "always_allow",
                }
            ],
        )
        service = await op.create_service_identity("bench-front", ["front"])
        stack.env["MONOMCP_SERVICE_TOKEN"] = service.secret
        return (await op.create_api_key("bench", "bench", "member")).secret


async def first_call_seconds(port: int, token: str, started: float) -> float:
    while True:
        try:
            result = await loadgen.run("127.0.0.1", port, "/bench/noop/mcp", token, 1, 0.001)
            if result.requests and not result.errors:
                return time.perf_counter() - started
        except OSError:
            pass
        await asyncio.sleep(0.02)


async def authorize_load(
    policy_addr: str, service_token: str, token: str, concurrency: int, seconds: float, complete: bool
) -> loadgen.Result:
    """AuthorizeToolCall (durable audit row included), optionally followed by CompleteToolCall."""
    out = loadgen.Result(0, 0, 0.0, [])
    async with PolicyClient(policy_addr, timeout=30, service_token=service_token) as client:
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    decision = await client.authorize_tool_call(token, "bench", "noop", "noop", "{}")
                    if complete:
                        await client.complete_tool_call(decision.call_id, "ok", '{"content":[]}', "", 0.1)
                except Exception:
                    out.errors += 1
                out.latencies_ms.append((time.perf_counter() - t0) * 1000)
                out.requests += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - started
    return out


def line(label: str, r: loadgen.Result) -> str:
    return f"| {label} | {r.rps:,.0f} | {r.percentile(50):.2f} | {r.percentile(99):.2f} | {r.errors} |"


async def bench_database(label: str, database_url: str, full_chain: bool) -> dict[str, Any]:
    from policy_service.storage.migrate import upgrade_async

    await upgrade_async(database_url)
    stack = Stack(database_url)
    out: dict[str, Any] = {"label": label}
    try:
        policy = stack.spawn("-m", "monomcp_cli.main", "serve", "policy", "--listen", f"127.0.0.1:{stack.policy_port}")
        upstream = stack.spawn("-m", "bench.noop_upstream", str(stack.upstream_port))
        wait_port(stack.policy_port)
        wait_port(stack.upstream_port)
        token = await seed(stack)
        addr = f"127.0.0.1:{stack.policy_port}"
        await authorize_load(addr, stack.env["MONOMCP_SERVICE_TOKEN"], token, 8, 1.0, complete=False)  # warm up
        out["authorize"] = await authorize_load(
            addr, stack.env["MONOMCP_SERVICE_TOKEN"], token, 32, SECONDS, complete=False
        )
        out["authorize_complete"] = await authorize_load(
            addr, stack.env["MONOMCP_SERVICE_TOKEN"], token, 32, SECONDS, complete=True
        )
        if full_chain:
            started = time.perf_counter()
            front = stack.spawn("-m", "monomcp_cli.main", "serve", "front", "--listen", f"127.0.0.1:{stack.front_port}")
            out["first_call_s"] = await first_call_seconds(stack.front_port, token, started)
            await loadgen.run("127.0.0.1", stack.front_port, "/bench/noop/mcp", token, 32, 2.0)  # warm up
            await loadgen.run("127.0.0.1", stack.upstream_port, "/mcp", None, 32, 1.0)
            out["gw1"] = await loadgen.run("127.0.0.1", stack.front_port, "/bench/noop/mcp", token, 1, SECONDS)
            out["direct1"] = await loadgen.run("127.0.0.1", stack.upstream_port, "/mcp", None, 1, SECONDS)
            out["gw32"] = await loadgen.run("127.0.0.1", stack.front_port, "/bench/noop/mcp", token, 32, SECONDS)
            out["front_rss"] = rss_mib(front.pid)
            out["policy_rss"] = rss_mib(policy.pid)
            out["direct32"] = await loadgen.run("127.0.0.1", stack.upstream_port, "/mcp", None, 32, SECONDS)
            out["upstream_rss"] = rss_mib(upstream.pid)
    finally:
        stack.stop()
    return out


def machine() -> str:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(ln.split()[1]) // 1024 // 1024
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    return f"{os.cpu_count()} cores ({model}), {mem} GiB RAM, Python {platform.python_version()}, {platform.system()}"


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`bench/run.py`); numbers from the last run on this machine.",
        "",
        f"- Machine: {machine()}",
        f"- Each measurement runs {SECONDS:g} s; the load generator, the upstream, the front and the policy",
        "  service all share the box. Requests are raw JSON-RPC `tools/call` over keep-alive HTTP/1.1",
        "  (initialize era, stateless), concurrency c.",
        "",
    ]
    for r in results:
        lines += [
            f"## {r['label']}",
            "",
            "| measurement | calls/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|",
        ]
        lines.append(line("AuthorizeToolCall alone (durable audit row), gRPC c=32", r["authorize"]))
        lines.append(line("AuthorizeToolCall + CompleteToolCall pairs, gRPC c=32", r["authorize_complete"]))
        if "gw32" in r:
            lines.append(line("tools/call through the gateway, c=1", r["gw1"]))
            lines.append(line("tools/call direct to the upstream, c=1", r["direct1"]))
            lines.append(line("tools/call through the gateway, c=32", r["gw32"]))
            lines.append(line("tools/call direct to the upstream, c=32", r["direct32"]))
            added = r["gw1"].percentile(50) - r["direct1"].percentile(50)
            lines += [
                "",
                f"- Gateway / direct throughput at c=32: {r['gw32'].rps / max(r['direct32'].rps, 1):.2f}",
                f"- Added p50 latency at c=1: {added:.2f} ms",
                f"- Peak RSS under load: front {r['front_rss']:.0f} MiB, policy service {r['policy_rss']:.0f} MiB,"
                f" upstream {r['upstream_rss']:.0f} MiB",
                f"- First call served {r['first_call_s']:.2f} s after the front process was started",
            ]
        lines.append("")
    lines += [
        "Targets (issue 3/5): ≥1,500 calls/s through the gateway at c=32; ≤2.5 ms added p50 at c=1;",
        "front ≤150 MiB and policy ≤200 MiB RSS; first call ≤2 s; AuthorizeToolCall ≥4,000/s with p99 ≤10 ms",
        "on Postgres. See the closing notes for what is met and what is not.",
        "",
    ]
    return "\n".join(lines)


async def main() -> None:
    results = []
    pg = await postgres_url()
    try:
        if pg:
            results.append(await bench_database("Postgres", pg, full_chain=True))
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = f"sqlite+aiosqlite:///{tmp}/bench.db"
            results.append(await bench_database("SQLite", sqlite, full_chain=pg is None or "--all" in sys.argv))
    finally:
        if pg:
            await drop_postgres(pg)
    text = report(results)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text(text)
    print(text)


if __name__ == "__main__":
    asyncio.run(main())
