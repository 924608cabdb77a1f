"""Load on the policy RPCs alone: AuthorizeToolCall (its durable audit row included),
optionally followed by CompleteToolCall, from `concurrency` workers for `seconds`."""

from __future__ import annotations

import asyncio
import time

from bench import loadgen
from policy_service.client import PolicyClient


async def authorize_load(
    policy_addr: str,
    service_token: str,
    token: str,
    toolkit: str,
    concurrency: int,
    seconds: float,
    complete: bool,
    stream: bool = False,
) -> loadgen.Result:
    """Calls of the always-allowed tool "noop" of the public toolkit `bench/<toolkit>`
    (`stream`: on CallStream instead of unary/CallBatch RPCs)."""
    out = loadgen.Result()
    async with PolicyClient(policy_addr, timeout=30, service_token=service_token, stream=stream) as client:
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    decision = await client.authorize_tool_call(token, "bench", toolkit, "noop", "{}")
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
