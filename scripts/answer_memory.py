"""Peak RSS of a real front process under the red team's reproduction (ADR 46, ADR 50): 8
concurrent tool calls whose answers are ~14 MiB of small JSON objects, while another org makes
small calls. `monomcp serve` processes on a throwaway SQLite database; settings as NAME=VALUE
arguments, e.g. `uv run python scripts/answer_memory.py MONOMCP_ANSWER_BUDGET_BYTES=33554432`.
To measure another tree (say, before a change), run it from an export of that tree with
PYTHONPATH set to it."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from mcp_front.edge.body import replay
from policy_service.client import PolicyClient
from policy_service.storage.migrate import upgrade_async
from tests.support.fault_stack import make_processes, process_env
from tests.support.servers import read_body, serve_asgi
from tests.support.upstream import Upstream

OPERATOR = "rss-operator-token"
ROWS: bytes = b""


def _rows(target: int) -> bytes:
    row = {"id": 0, "name": "row", "ok": True, "tags": ["a", "b"]}
    one = len(json.dumps(row, separators=(",", ":"))) + 1
    rows = [{**row, "id": n} for n in range(int(target // (one + 2)))]
    return json.dumps(
        {"content": [{"type": "text", "text": "rows"}], "structuredContent": {"rows": rows}}, separators=(",", ":")
    ).encode()


class Big:
    def __init__(self) -> None:
        self.inner = Upstream().app(any_host=True)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        body = await read_body(receive)
        request = json.loads(body or b"{}")
        if request.get("method") == "tools/call" and request["params"]["arguments"].get("text") == "big":
            answer = b'{"jsonrpc":"2.0","id":' + json.dumps(request["id"]).encode() + b',"result":' + ROWS + b"}"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": answer})
            return
        return await self.inner(scope, replay(body, receive), send)


def _hwm(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) // 1024, int(fields["VmRSS"].split()[0]) // 1024


async def main(extra_env: dict[str, str]) -> None:
    global ROWS
    ROWS = _rows(int(13.35 * 1_048_576))
    print(f"answer size {len(ROWS) / 1_048_576:.1f} MiB", flush=True)
    work = Path(tempfile.mkdtemp(prefix="rss-"))
    url = f"sqlite+aiosqlite:///{work}/db.sqlite"
    await upgrade_async(url)
    env = {**process_env(url, OPERATOR, "jwt-secret-for-rss-measure-0123456789", 3600), **extra_env}
    env["MONOMCP_MAX_CONCURRENT_PER_KEY"] = "1000"
    policy, front = make_processes(env, work)
    await policy.start()
    try:
        async with serve_asgi(Big()) as base, PolicyClient(policy.address, OPERATOR) as op:
            await op.create_org("acme", "Acme")
            key = (await op.create_api_key("acme", "m", "member")).secret
            await op.upsert_toolkit("acme", "big", name="big", backend_url=f"{base}/mcp", backend_timeout_seconds=120.0)
            await op.sync_tools("acme", "big", await Upstream().catalogue())
            await op.create_org("globex", "Globex")
            victim_key = (await op.create_api_key("globex", "v", "member")).secret
            await op.upsert_toolkit(
                "globex", "small", name="small", backend_url=f"{base}/mcp", backend_timeout_seconds=120.0
            )
            await op.sync_tools("globex", "small", await Upstream().catalogue())
            token = (await op.create_service_identity("front-rss", ["front"])).secret
            front.set_env("MONOMCP_SERVICE_TOKEN", token)
            await front.start()
            pid = front._proc.pid  # type: ignore[union-attr]  # the test helper keeps it private
            endpoint = f"http://{front.address}"
            headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}

            async def call(who: str, toolkit: str, text: str) -> tuple[str, float]:
                body = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": text}},
                }
                started = time.perf_counter()
                async with httpx.AsyncClient(timeout=300) as http:
                    r = await http.post(
                        f"{endpoint}/{toolkit}/mcp", json=body, headers={**headers, "Authorization": f"Bearer {who}"}
                    )
                answer = r.json()
                outcome = (
                    "ok" if "result" in answer and not answer["result"].get("isError") else json.dumps(answer)[:160]
                )
                return outcome, time.perf_counter() - started

            for _ in range(3):
                await call(victim_key, "globex/small", "warm")
            print("baseline (peak, now) MiB:", _hwm(pid), flush=True)

            async def victim() -> list[tuple[str, float]]:
                seen = []
                for _ in range(40):
                    seen.append(await call(victim_key, "globex/small", "small"))
                    await asyncio.sleep(0.1)
                return seen

            started = time.perf_counter()
            victims = asyncio.ensure_future(victim())
            bigs = await asyncio.gather(*(call(key, "acme/big", "big") for _ in range(8)))
            took = time.perf_counter() - started
            small = await victims
            print("after (peak, now) MiB:", _hwm(pid), flush=True)
            print(
                f"8 large calls in {took:.1f} s:",
                sorted({o for o, _ in bigs}),
                [round(t, 1) for _, t in bigs],
                flush=True,
            )
            print(
                "victim: ok",
                sum(o == "ok" for o, _ in small),
                "of",
                len(small),
                "max latency",
                round(max(t for _, t in small), 2),
                "s",
                flush=True,
            )
    finally:
        await front.stop()
        await policy.stop()


if __name__ == "__main__":
    import logging

    logging.disable(logging.INFO)
    asyncio.run(main(dict(arg.split("=", 1) for arg in sys.argv[1:])))
