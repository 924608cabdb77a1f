"""Runs the official TypeScript SDK client (tests/clients/ts_client.mjs, via Node 22) against
the front. Node and the SDK are installed by `node_clients` from tests/clients' lock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.support import node_clients


class TsClient:
    """One running TS client action; `task_id()` waits for a stream's task to be created."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    async def task_id(self) -> str:
        assert self._process.stderr is not None
        while True:
            line = await self._process.stderr.readline()
            if not line:
                raise RuntimeError("the TS client ended before creating a task")
            try:
                return str(json.loads(line)["taskId"])
            except (ValueError, KeyError, TypeError):
                continue

    async def output(self) -> dict[str, Any]:
        stdout, _ = await self._process.communicate()
        parsed: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
        return parsed


async def start(url: str, token: str, action: str, params: dict[str, Any]) -> TsClient:
    script = node_clients.script("ts_client.mjs")
    process = await asyncio.create_subprocess_exec(
        str(node_clients.NODE),
        str(script),
        url,
        token,
        action,
        json.dumps(params),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=script.parent,
    )
    return TsClient(process)


async def run(url: str, token: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    return await (await start(url, token, action, params)).output()
