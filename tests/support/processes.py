"""Real gateway processes for fault tests: `monomcp serve policy|front` as children that a
test can kill -9 and restart on the same address, and a throwaway Postgres database whose
connections it can terminate."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from policy_service.storage.migrate import upgrade_async

READY_TIMEOUT = 60.0


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class ServiceProcess:
    """One `monomcp serve KIND --listen 127.0.0.1:PORT`; stderr goes to `log_path`."""

    def __init__(self, kind: str, port: int, env: dict[str, str], log_path: Path) -> None:
        self.kind = kind
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self._env = env
        self._log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self.kills = 0

    def set_env(self, name: str, value: str) -> None:
        """Takes effect at the next (re)start."""
        self._env = {**self._env, name: value}

    async def start(self) -> None:
        """Spawns the process and returns once it accepts connections."""
        with self._log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monomcp_cli.main",
                "serve",
                self.kind,
                "--listen",
                self.address,
                env=self._env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        await self.wait_ready()

    async def wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while not await _port_open(self.port):
            if self._proc is not None and self._proc.returncode is not None:
                raise RuntimeError(f"{self.kind} exited with {self._proc.returncode}; see {self._log_path}")
            if loop.time() > deadline:
                raise RuntimeError(f"{self.kind} not listening on {self.address} after {READY_TIMEOUT:g} s")
            await asyncio.sleep(0.05)

    async def kill9(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight work is lost mid-step."""
        if self._proc is None or self._proc.returncode is not None:
            return
        self._proc.send_signal(signal.SIGKILL)
        await self._proc.wait()
        self.kills += 1

    async def crash_and_restart(self) -> None:
        await self.kill9()
        await self.start()

    async def stop(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            await self.kill9()


def _connect_args(url: URL) -> dict[str, object]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": url.database or "postgres",
    }


@contextlib.asynccontextmanager
async def throwaway_postgres(base_url: str) -> AsyncIterator[str]:
    """A fresh migrated database on the server of `base_url` (dropped afterwards); yields its URL."""
    base = make_url(base_url)
    name = f"monomcp_fault_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(**_connect_args(base))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        yield url
    finally:
        admin = await asyncpg.connect(**_connect_args(base))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def terminate_backends(database_url: str) -> int:
    """Terminates every other connection to the database (as a failover or an admin would)."""
    conn = await asyncpg.connect(**_connect_args(make_url(database_url)))
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return sum(1 for r in rows if r[0])
