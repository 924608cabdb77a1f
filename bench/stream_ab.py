"""Front and policy CPU per gateway call with the policy calls on CallStream or on
unary/CallBatch RPCs (ADR 0029): two fronts, `MONOMCP_POLICY_STREAM` false and true, on one
policy service (SQLite) and the raw no-op upstream, loaded in alternating windows so both
see the same neighbours. CPU from /proc over each window.

    uv run python -m bench.stream_ab
Environment: MONOMCP_BENCH_SECONDS (per window, default 2), MONOMCP_BENCH_ROUNDS (default 6).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile

from bench import loadgen
from bench.procs import cpu_seconds, free_port, wait_port
from bench.run import Stack, seed

SECONDS = float(os.environ.get("MONOMCP_BENCH_SECONDS", "2"))
ROUNDS = int(os.environ.get("MONOMCP_BENCH_ROUNDS", "6"))
PATH = "/bench/raw/mcp"


async def window(stack: Stack, name: str, port: int, token: str, c: int) -> tuple[float, float, float, float]:
    """(front ms/call, policy ms/call, calls/s, p50 ms) of one load window."""
    front, policy = stack.procs[name].pid, stack.procs["policy"].pid
    before_front, before_policy = cpu_seconds(front), cpu_seconds(policy)
    result = await loadgen.run("127.0.0.1", port, PATH, token, c, SECONDS)
    calls = max(result.requests, 1)
    if result.errors:
        print(f"  {name} c={c}: {result.errors} errors")
    return (
        (cpu_seconds(front) - before_front) * 1000 / calls,
        (cpu_seconds(policy) - before_policy) * 1000 / calls,
        result.rps,
        result.percentile(50),
    )


async def main() -> None:
    from policy_service.storage.migrate import upgrade_async

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/stream_ab.db"
        await upgrade_async(url)
        stack = Stack(url)
        try:
            stack.spawn(
                "policy", "-m", "monomcp_cli.main", "serve", "policy", "--listen", f"127.0.0.1:{stack.policy_port}"
            )
            stack.spawn("raw", "-m", "bench.raw_upstream", str(stack.upstream_ports["raw"]))
            wait_port(stack.policy_port)
            wait_port(stack.upstream_ports["raw"])
            token = await seed(stack)
            fronts: dict[str, int] = {}
            for stream in ("false", "true"):
                port = fronts[f"stream={stream}"] = free_port()
                stack.env["MONOMCP_POLICY_STREAM"] = stream
                stack.spawn(
                    f"stream={stream}", "-m", "monomcp_cli.main", "serve", "front", "--listen", f"127.0.0.1:{port}"
                )
                wait_port(port)
                await loadgen.run("127.0.0.1", port, PATH, token, 8, 1.0)  # warm up
            print("| c | policy calls on | front CPU ms/call | policy CPU ms/call | calls/s | p50 ms |")
            print("|---|---|---|---|---|---|")
            for c in (1, 32):
                rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in fronts}
                for _ in range(ROUNDS):
                    for name, port in fronts.items():
                        rows[name].append(await window(stack, name, port, token, c))
                for name, values in rows.items():
                    med = [statistics.median(v[i] for v in values) for i in range(4)]
                    print(f"| {c} | {name} | {med[0]:.3f} | {med[1]:.3f} | {med[2]:,.0f} | {med[3]:.2f} |", flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
