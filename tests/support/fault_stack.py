"""The gateway as separate processes for fault tests: policy service and front as children
(killable), the upstream in the test's loop (it counts executions), Postgres underneath;
plus the seeding and the fault schedule a run applies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from policy_service.client import DECISION_PENDING_APPROVAL, PolicyClient
from tests.support.counting_upstream import TRANSFER, CountingUpstream
from tests.support.fault_load import TRANSFER_AMOUNT, Ledger, Target
from tests.support.processes import ServiceProcess, terminate_backends
from tests.support.servers import free_port, serve_asgi

ORG, TOOLKIT = "acme", "faults"


@dataclass
class Stack:
    database_url: str
    upstream: CountingUpstream
    policy: ServiceProcess
    front: ServiceProcess
    operator: PolicyClient
    member_key: str = ""
    admin_key: str = ""
    service_token: str = ""

    @property
    def target(self) -> Target:
        return Target(f"http://{self.front.address}/{ORG}/{TOOLKIT}/mcp", self.member_key)


def process_env(database_url: str, operator_token: str, jwt_secret: str, digest_seconds: float) -> dict[str, str]:
    """What `monomcp serve` reads; digests run every `digest_seconds`, during the faults too."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "MONOMCP_OPERATOR_TOKEN": operator_token,
        "JWT_SECRET": jwt_secret,
        "MONOMCP_REQUEST_STATE_KEY": "fault-test-request-state-key",
        "MONOMCP_AUDIT_DIGEST_INTERVAL_SECONDS": str(digest_seconds),
        "MONOMCP_POLICY_TIMEOUT_SECONDS": "3",
        "MONOMCP_BACKEND_ALLOW_PRIVATE": "true",  # the counting upstream listens on loopback
    }


def make_processes(env: dict[str, str], log_dir: Path) -> tuple[ServiceProcess, ServiceProcess]:
    policy = ServiceProcess("policy", free_port(), env, log_dir / "policy.log")
    front_port = free_port()
    front_env = {
        **env,
        "MONOMCP_POLICY_ADDR": policy.address,
        "MONOMCP_PUBLIC_URL": f"http://127.0.0.1:{front_port}",
    }
    return policy, ServiceProcess("front", front_port, front_env, log_dir / "front.log")


@contextlib.asynccontextmanager
async def running_stack(
    database_url: str, upstream: CountingUpstream, env: dict[str, str], log_dir: Path
) -> AsyncIterator[Stack]:
    """Both processes started on `database_url` (`env` from `process_env`), seeded, with
    `upstream` served in the test's loop; stopped afterwards."""
    async with serve_asgi(upstream.app()) as upstream_base:
        policy, front = make_processes(env, log_dir)
        operator = PolicyClient(policy.address, env["MONOMCP_OPERATOR_TOKEN"])
        stack = Stack(database_url, upstream, policy, front, operator)
        try:
            await policy.start()
            await seed(stack, f"{upstream_base}/mcp")
            front.set_env("MONOMCP_SERVICE_TOKEN", stack.service_token)
            await front.start()
            yield stack
        finally:
            await operator.close()
            await front.stop()
            await policy.stop()


async def seed(stack: Stack, upstream_url: str) -> None:
    """An org with a member and an admin key, a toolkit on the counting upstream, and the
    front's service identity (which the front process reads from its environment)."""
    operator = stack.operator
    await operator.create_org(ORG, "Acme")
    stack.member_key = (await operator.create_api_key(ORG, "load member", "member")).secret
    stack.admin_key = (await operator.create_api_key(ORG, "approver", "admin")).secret
    await operator.upsert_toolkit(
        ORG, TOOLKIT, name="faults", visibility="private", backend_url=upstream_url, backend_timeout_seconds=10.0
    )
    await operator.sync_tools(ORG, TOOLKIT, await stack.upstream.catalogue())
    stack.service_token = (await operator.create_service_identity("front-faults", ["front"])).secret


async def preapprove(stack: Stack, ledger: Ledger, count: int) -> None:
    """`count` transfer ids, each asked for by the member and approved by an admin up front."""
    limit = asyncio.Semaphore(8)
    async with PolicyClient(stack.policy.address, service_token=stack.service_token) as service:
        async with PolicyClient(stack.policy.address, stack.admin_key) as admin:

            async def one(i: int) -> None:
                call_id = f"a-{i:06d}"
                arguments = json.dumps({"id": call_id, "amount": TRANSFER_AMOUNT}, separators=(",", ":"))
                async with limit:
                    decision = await service.authorize_tool_call(stack.member_key, ORG, TOOLKIT, TRANSFER, arguments)
                    if decision.decision != DECISION_PENDING_APPROVAL:
                        raise RuntimeError(f"expected a pending approval for {call_id}, got {decision}")
                    await admin.decide_approval(decision.approval.id, approve=True)
                ledger.approved.append(call_id)

            await asyncio.gather(*(one(i) for i in range(count)))


@dataclass
class FaultLog:
    counts: Counter[str] = field(default_factory=Counter)
    pg_connections_terminated: int = 0

    def summary(self) -> str:
        return (
            f"faults: policy kill -9={self.counts['policy']} front kill -9={self.counts['front']} "
            f"postgres terminations={self.counts['postgres']} ({self.pg_connections_terminated} connections)"
        )


async def inject_faults(stack: Stack, seconds: float, period: float = 4.0, recovery: float = 4.0) -> FaultLog:
    """Every `period` s until `recovery` s before `seconds` have passed, in turn: kill -9 the policy service,
    terminate Postgres connections, kill -9 the front, terminate again. A killed process is
    restarted in the background (on the same address); it is not killed again until it is up."""
    log = FaultLog()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    restarts: dict[str, asyncio.Task[None]] = {}
    cycle = ["policy", "postgres", "front", "postgres"]
    step = 0
    await asyncio.sleep(min(period, seconds / 8))
    while loop.time() < deadline - recovery:
        kind = cycle[step % len(cycle)]
        step += 1
        if kind == "postgres":
            log.pg_connections_terminated += await terminate_backends(stack.database_url)
        elif kind in restarts and not restarts[kind].done():
            continue  # still restarting from the previous kill
        else:
            process = stack.policy if kind == "policy" else stack.front
            await process.kill9()
            restarts[kind] = asyncio.create_task(process.start())
        log.counts[kind] += 1
        await asyncio.sleep(period)
    await asyncio.gather(*restarts.values())
    return log
