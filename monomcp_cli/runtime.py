"""Process wiring for the serve/dev/seed commands."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from policy_service.config import Settings


def run_async(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(coro)


def tune_gc() -> None:
    """For both server processes, once their modules are loaded: freezing the startup objects
    and raising the young-generation threshold removes the long full-GC pauses seen under
    load (the policy service's full collection took 60-80 ms and made its p99 outliers; frozen,
    ~3 ms). No collect first: after the front's imports it took 45-75 ms of the time to the
    first call and found ~20 unreachable objects (docs/adr/0023-front-cpu-per-call.md,
    docs/adr/0052-both-processes-tune-the-collector.md)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def serve_front(settings: Settings, listen: str | None, policy_addr: str | None) -> None:
    import uvicorn

    from mcp_front.app import build_app
    from mcp_front.edge.protocol import server_options

    host, port = (listen or settings.front_listen).rsplit(":", 1)
    app = build_app(settings, policy_addr)
    tune_gc()
    # httptools with the edge's header cap and read deadlines (mcp_front/edge/protocol.py).
    uvicorn.run(
        app,
        host=host,
        port=int(port),
        loop="uvloop",
        log_level="warning",
        timeout_graceful_shutdown=5,
        **server_options(settings),
    )


async def seed_demo(settings: Settings, backend_url: str) -> dict[str, Any]:
    from policy_service.demo import seed
    from policy_service.storage.database import create_engine, session_factory
    from policy_service.storage.migrate import upgrade_async

    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        return await seed(session_factory(engine), backend_url, settings.public_url)
    finally:
        await engine.dispose()


DEV_SECRETS = Path(".monomcp") / "dev-secrets.json"


def dev_secrets() -> dict[str, str]:
    """Secrets for `monomcp dev`, made once and kept (owner-only) under .monomcp/ so sessions,
    signed request states and the operator token survive a restart."""
    wanted = {
        "MONOMCP_OPERATOR_TOKEN": "mmcp-operator-",
        "JWT_SECRET": "",
        "MONOMCP_REQUEST_STATE_KEY": "",
        "MONOMCP_AUDIT_SIGNING_KEY": "",
    }
    kept: dict[str, str] = json.loads(DEV_SECRETS.read_text()) if DEV_SECRETS.exists() else {}
    if set(wanted) - set(kept):
        kept |= {name: prefix + secrets.token_urlsafe(32) for name, prefix in wanted.items() if name not in kept}
        DEV_SECRETS.parent.mkdir(parents=True, exist_ok=True)
        DEV_SECRETS.touch(mode=0o600)
        DEV_SECRETS.write_text(json.dumps(kept, indent=2))
    return kept


async def issue_dev_service_token(settings: Settings) -> str:
    """A fresh `front` service identity for this dev run; earlier dev runs' are revoked."""
    from policy_service.identity.services import ServiceDirectory
    from policy_service.storage.database import create_engine, session_factory

    engine = create_engine(settings.database_url)
    try:
        directory = ServiceDirectory(session_factory(engine), 0.0)
        for record in await directory.list():
            if record.name.startswith("front-dev-") and record.revoked_at is None:
                await directory.revoke(record.id)
        _, token = await directory.create(f"front-dev-{secrets.token_hex(4)}", ["front"])
        return token
    finally:
        await engine.dispose()


def _wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {host}:{port} after {timeout:g} s")


def _listening(address: str) -> bool:
    """Whether something already accepts connections on HOST:PORT (0.0.0.0: on loopback)."""
    import socket

    host, port = _split(address)
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1" if host in ("0.0.0.0", "") else host, port)) == 0


def _refuse_busy(addresses: dict[str, str]) -> None:
    """Stops before seeding when an address is taken: the child that cannot bind would die with a
    traceback after "MonoMCP is running" (gRPC even shares a port with another server)."""
    busy = [f"{address} ({what})" for what, address in addresses.items() if _listening(address)]
    if busy:
        raise SystemExit(
            f"cannot start: already in use: {', '.join(busy)}. Another `monomcp dev` (or `make run`) may be"
            " running: stop it, or choose free addresses with `monomcp dev --front HOST:PORT --policy HOST:PORT"
            " --backend HOST:PORT` and MONOMCP_POLICY_METRICS_LISTEN=HOST:PORT."
        )


_DEV_PROCESSES = ("the demo backend", "the policy service", "the front")


def run_dev(settings: Settings, front: str, policy: str, backend: str) -> None:
    """Seed, then run the three processes as children; Ctrl-C stops them all."""
    from monomcp_cli.output import console, print_demo

    env = dict(os.environ)
    for name, value in dev_secrets().items():
        env.setdefault(name, value)
    env.setdefault("MONOMCP_ENV", "development")
    env.setdefault("MONOMCP_LOG_FORMAT", "text")
    # The demo backend listens on loopback, which production egress rules refuse.
    env.setdefault("MONOMCP_BACKEND_ALLOW_PRIVATE", "true")
    env.setdefault("MONOMCP_POLICY_METRICS_LISTEN", "127.0.0.1:9465")
    env["MONOMCP_POLICY_ADDR"] = policy
    _refuse_busy(
        {
            "front": front,
            "policy service": policy,
            "demo backend": backend,
        }
        | ({"policy metrics": env["MONOMCP_POLICY_METRICS_LISTEN"]} if env["MONOMCP_POLICY_METRICS_LISTEN"] else {})
    )
    env["MONOMCP_PUBLIC_URL"] = env.get("MONOMCP_PUBLIC_URL", f"http://{front}")
    overrides: dict[str, Any] = {k: v for k, v in env.items() if k.startswith(("MONOMCP_", "JWT_", "DATABASE_"))}
    settings = Settings(_env_file=None, **overrides)
    result = asyncio.run(seed_demo(settings, f"http://{backend}/mcp"))
    env["MONOMCP_SERVICE_TOKEN"] = asyncio.run(issue_dev_service_token(settings))
    cli = [sys.executable, "-m", "monomcp_cli.main", "serve"]
    procs = [
        subprocess.Popen([*cli, "demo-backend", "--listen", backend], env=env),
        subprocess.Popen([*cli, "policy", "--listen", policy], env=env),
    ]
    try:
        _wait_port(*_split(backend))
        _wait_port(*_split(policy))
        procs.append(subprocess.Popen([*cli, "front", "--listen", front, "--policy", policy], env=env))
        _wait_port(*_split(front))
        print_demo(result)
        console.print(f"[bold]Operator token[/bold] {env['MONOMCP_OPERATOR_TOKEN']}")
        console.print(f"[bold]Policy service[/bold] {policy} (gRPC, reflection on)")
        console.print(
            f"[bold]Metrics[/bold]        http://{front}/metrics and http://{env['MONOMCP_POLICY_METRICS_LISTEN']}/metrics"
        )
        console.print("MonoMCP is running. Press Ctrl-C to stop.")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        gone = next(i for i, p in enumerate(procs) if p.poll() is not None)
        raise SystemExit(f"{_DEV_PROCESSES[gone]} exited (code {procs[gone].returncode}); stopping the others")
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)
