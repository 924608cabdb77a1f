"""What one round trip costs on this box before any gateway work: the CPU floor under c=1.

At c=1 nothing is batched, so every call pays each process's wake-ups and syscalls in full.
A call through the gateway takes, at the least, these round trips (DESIGN: the `started` row is
durable before the tool runs, the completion before the answer):
- front: the client's HTTP exchange (served), the upstream's (as client), and two policy
  items (authorize, complete) on the CallStream (as gRPC client);
- policy service: the same two items (as gRPC server), each committed (a Postgres round trip).
This probe measures each kind of round trip alone, between two processes on uvloop as the
services run, echoing 200 bytes: a TCP echo (the floor of any HTTP exchange), a grpc.aio
bidirectional-stream echo (the CallStream's transport), and asyncpg's `SELECT 1` (the floor of
a commit). CPU per round trip comes from /proc for both sides.

Run alone: `uv run python -m bench.floor` (prints the figures as JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.procs import cpu_seconds, free_port, wait_port

PAYLOAD = b"x" * 200
ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("MONOMCP_BENCH_FLOOR_SECONDS", "1.5"))


@dataclass(frozen=True)
class RoundTrip:
    """CPU per round trip (ms) on each side, and the rate reached at c=1."""

    client_ms: float
    server_ms: float
    per_second: float


@dataclass(frozen=True)
class Floor:
    tcp: RoundTrip
    grpc: RoundTrip
    postgres: RoundTrip | None  # None when no Postgres answers

    def front_ms(self) -> float:
        """One HTTP exchange served, one made to the upstream, two CallStream items sent."""
        return self.tcp.server_ms + self.tcp.client_ms + 2 * self.grpc.client_ms

    def policy_ms(self, durable: bool) -> float:
        """Two CallStream items served, each committed (a Postgres round trip when `durable`)."""
        commits = 2 * self.postgres.client_ms if durable and self.postgres else 0.0
        return 2 * self.grpc.server_ms + commits


def _identity(data: bytes) -> bytes:
    return data


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _serve_tcp(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", port)
    await server.serve_forever()


async def _serve_grpc(port: int) -> None:
    import grpc

    async def echo(requests: Any, _context: Any) -> Any:
        async for message in requests:
            yield message

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Stream": grpc.stream_stream_rpc_method_handler(echo, _identity, _identity)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _timed(step: Any, server_pids: list[int]) -> RoundTrip:
    for _ in range(200):  # warm: connections open, code paths hot
        await step()
    count, mine, theirs = 0, _own_cpu(), sum(cpu_seconds(p) for p in server_pids)
    started = time.perf_counter()
    while time.perf_counter() - started < SECONDS:
        await step()
        count += 1
    elapsed = time.perf_counter() - started
    client = (_own_cpu() - mine) * 1000 / count
    server = (sum(cpu_seconds(p) for p in server_pids) - theirs) * 1000 / count
    return RoundTrip(client, server, count / elapsed)


async def _client(kind: str, port: int, server_pid: int) -> RoundTrip:
    if kind == "tcp":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def tcp_step() -> None:
            writer.write(PAYLOAD)
            await reader.readexactly(len(PAYLOAD))

        return await _timed(tcp_step, [server_pid])
    if kind == "grpc":
        import grpc

        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        call: Any = channel.stream_stream("/bench.Echo/Stream", _identity, _identity)()

        async def grpc_step() -> None:
            await call.write(PAYLOAD)
            await call.read()

        return await _timed(grpc_step, [server_pid])
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")
    backend = int(await conn.fetchval("SELECT pg_backend_pid()"))

    async def pg_step() -> None:
        await conn.fetchval("SELECT 1")

    return await _timed(pg_step, [backend])


def _child(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.floor", *args], stdout=subprocess.PIPE, cwd=ROOT)


def _measure(kind: str, port: int, server_pid: int) -> RoundTrip:
    out, _ = _child("client", kind, str(port), str(server_pid)).communicate(timeout=120)
    return RoundTrip(**json.loads(out))


def measure(postgres: bool) -> Floor:
    """Each round trip between two fresh processes (servers stopped afterwards)."""
    results: dict[str, RoundTrip] = {}
    for kind in ("tcp", "grpc"):
        port = free_port()
        server = _child("serve", kind, str(port))
        try:
            wait_port(port)
            results[kind] = _measure(kind, port, server.pid)
        finally:
            server.kill()
            server.wait()
    pg = _measure("postgres", 5432, 0) if postgres else None
    return Floor(results["tcp"], results["grpc"], pg)


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        _run(_serve_tcp(int(argv[2])) if argv[1] == "tcp" else _serve_grpc(int(argv[2])))
    elif argv[:1] == ["client"]:
        result = _run(_client(argv[1], int(argv[2]), int(argv[3])))
        print(json.dumps(asdict(result)))
    else:
        print(json.dumps(asdict(measure(postgres=True)), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
