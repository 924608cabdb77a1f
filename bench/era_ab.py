"""Before/after for ADR 0032 on the SDK no-op upstream only: two fronts (this checkout and
another, MONOMCP_BENCH_FRONT_DIR, e.g. `git archive` of an older commit) against one policy
service and one SDK upstream, in interleaved rounds (direct, then each front, the order
alternating), so both fronts see the same neighbours. Prints, per era and concurrency:
calls/s, ratio to direct, added p50, and CPU ms per call of front, policy and upstream.

    MONOMCP_BENCH_FRONT_DIR=/tmp/before uv run python -m bench.era_ab
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from bench import loadgen, run
from bench.procs import cpu_seconds, free_port, wait_port

BEFORE = Path(os.environ["MONOMCP_BENCH_FRONT_DIR"])
FRONTS = {"before": BEFORE, "after": run.ROOT}


async def main() -> None:
    from policy_service.storage.migrate import upgrade_async

    pg = await run.postgres_url()
    if pg is None:
        raise SystemExit("needs Postgres")
    stack = run.Stack(pg)
    try:
        await upgrade_async(pg)
        stack.spawn("policy", "-m", "monomcp_cli.main", "serve", "policy", "--listen", f"127.0.0.1:{stack.policy_port}")
        stack.spawn("sdk", "-m", run.UPSTREAMS["sdk"], str(stack.upstream_ports["sdk"]))
        stack.spawn("raw", "-m", run.UPSTREAMS["raw"], str(stack.upstream_ports["raw"]))
        wait_port(stack.policy_port)
        wait_port(stack.upstream_ports["sdk"])
        token = await run.seed(stack)
        ports = {name: free_port() for name in FRONTS}
        for name, cwd in FRONTS.items():
            listen = f"127.0.0.1:{ports[name]}"
            stack.spawn(name, "-m", "monomcp_cli.main", "serve", "front", "--listen", listen, cwd=cwd)
            wait_port(ports[name])
        await _measure(stack, token, ports)
    finally:
        stack.stop()
        await run.drop_postgres(pg)


async def _measure(stack: run.Stack, token: str, ports: dict[str, int]) -> None:
    up = stack.upstream_ports["sdk"]
    for era in run.ERAS:
        for port in ports.values():  # warm: sessions, discover, caches
            await loadgen.run("127.0.0.1", port, "/bench/sdk/mcp", token, 8, 0.5, era)
        for c in run.CONCURRENCY:
            direct = loadgen.Result()
            via: dict[str, loadgen.Result] = {n: loadgen.Result() for n in ports}
            cpu: dict[str, dict[str, float]] = {n: dict.fromkeys(("front", "policy", "upstream"), 0.0) for n in ports}
            direct_cpu = 0.0
            for round_ in range(run.ROUNDS):
                started = cpu_seconds(stack.procs["sdk"].pid)
                direct.add(await loadgen.run("127.0.0.1", up, "/mcp", None, c, run.SECONDS, era))
                direct_cpu += cpu_seconds(stack.procs["sdk"].pid) - started
                order = list(ports) if round_ % 2 == 0 else list(reversed(ports))
                for name in order:
                    pids = {
                        "front": stack.procs[name].pid,
                        "policy": stack.procs["policy"].pid,
                        "upstream": stack.procs["sdk"].pid,
                    }
                    before = {k: cpu_seconds(p) for k, p in pids.items()}
                    path = "/bench/sdk/mcp"
                    via[name].add(await loadgen.run("127.0.0.1", ports[name], path, token, c, run.SECONDS, era))
                    for k, p in pids.items():
                        cpu[name][k] += cpu_seconds(p) - before[k]
            print(f"{era} c={c:<2} direct upstream CPU {direct_cpu * 1000 / max(direct.requests, 1):.3f} ms/call")
            for name, result in via.items():
                print(_line(era, c, name, direct, result, cpu[name]), flush=True)


def _line(era: str, c: int, name: str, direct: loadgen.Result, gw: loadgen.Result, cpu: dict[str, Any]) -> str:
    per = {k: v * 1000 / max(gw.requests, 1) for k, v in cpu.items()}
    return (
        f"{era} c={c:<2} {name:6} direct {direct.rps:7,.0f}/s gateway {gw.rps:6,.0f}/s ratio {gw.rps / direct.rps:.2f} "
        f"added p50 {gw.percentile(50) - direct.percentile(50):5.2f} ms  CPU ms/call front {per['front']:.2f} "
        f"policy {per['policy']:.2f} upstream {per['upstream']:.2f}  errors {gw.errors}"
    )


if __name__ == "__main__":
    asyncio.run(main())
