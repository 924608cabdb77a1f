"""`monomcp dev` (what `make run` runs) from a fresh directory: an address already taken (another
dev run, here the policy service's metrics port) stops it before anything starts, with one line
naming the address and how to pick others. It used to seed, print "MonoMCP is running", and
then die with the metrics listener's 100-line traceback and "a MonoMCP process exited"."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.servers import free_port


async def test_a_busy_address_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics = f"127.0.0.1:{taken.getsockname()[1]}"
        env = os.environ | {
            "MONOMCP_POLICY_METRICS_LISTEN": metrics,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}",
        }
        ports = [f"127.0.0.1:{free_port()}" for _ in range(3)]
        command = [sys.executable, "-m", "monomcp_cli.main", "dev"]
        command += ["--front", ports[0], "--policy", ports[1], "--backend", ports[2]]
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    assert done.returncode != 0
    assert f"already in use: {metrics} (policy metrics)" in done.stderr
    assert "MONOMCP_POLICY_METRICS_LISTEN" in done.stderr and "--front HOST:PORT" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "MonoMCP is running" not in done.stdout
