"""HTTP-level refusals are audited, leave clean logs, and readiness follows the policy service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mcp_front.app import build_app
from policy_service.api.server import PolicyServer, start
from policy_service.config import Settings
from tests.conftest import World
from tests.support.servers import free_port, serve_asgi

ACCEPT = {"Accept": "application/json, text/event-stream"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


async def _statuses(world: World) -> list[tuple[str, str]]:
    records = (await world.operator.query_audit("", toolkit="tools", page_size=200)).records
    return sorted((r.status, r.error) for r in records)


async def test_http_rejections_are_audited(world: World, front: str) -> None:
    auth = {"Authorization": f"Bearer {world.keys['acme:member']}"}
    url = f"{front}/acme/tools/mcp"
    async with httpx.AsyncClient() as http:
        wrong_method = await http.delete(url, headers=auth)
        not_acceptable = await http.post(url, headers={**auth, "Accept": "text/html"}, json=PING)
        bad_host = await http.post(url, headers={**auth, **ACCEPT, "Host": "evil.example"}, json=PING)
        bad_origin = await http.post(url, headers={**auth, **ACCEPT, "Origin": "http://evil.example"}, json=PING)
        wrong_type = await http.post(url, headers={**auth, **ACCEPT, "Content-Type": "text/plain"}, content=b"{}")
    assert [wrong_method.status_code, not_acceptable.status_code, bad_host.status_code] == [405, 406, 421]
    assert [bad_origin.status_code, wrong_type.status_code] == [403, 400]
    assert await _statuses(world) == [
        ("forbidden", "invalid Host header"),
        ("forbidden", "invalid Origin header"),
        ("invalid", "Content-Type must be application/json"),
        ("invalid", "method DELETE not allowed"),
        ("invalid", "not acceptable: the client must accept application/json"),
    ]


async def test_control_characters_in_path_cannot_forge_log_lines(
    world: World, front: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monomcp.front")
    host, port = front.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = "/x%0d%0aINFO%20forged%20line%1b[31m"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    assert b" 404 " in await reader.read()
    writer.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("http ")]
    assert len(lines) == 1
    assert "\r" not in lines[0] and "\n" not in lines[0] and "\x1b" not in lines[0]
    assert "\\u000d\\u000aINFO forged line\\u001b[31m" in lines[0]


async def test_client_leaving_mid_body_logs_no_traceback(
    world: World, front: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    host, port = front.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /acme/tools/mcp HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {world.keys['acme:member']}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"jsonrpc"')
    await writer.drain()
    writer.close()
    for _ in range(200):  # the refusal is audited once the front notices the client left
        if ("invalid", "client disconnected before sending the whole body") in await _statuses(world):
            break
        await asyncio.sleep(0.05)
    assert ("invalid", "client disconnected before sending the whole body") in await _statuses(world)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_readyz_follows_the_policy_service(
    world: World, settings: Settings, policy: PolicyServer, policy_addr: str
) -> None:
    fast: dict[str, Any] = {"policy_timeout_seconds": 1.0}
    async with serve_asgi(build_app(settings.model_copy(update=fast), policy_addr)) as base:
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"{base}/readyz")
            await policy.server.stop(0)
            down = await http.get(f"{base}/readyz")
            alive = await http.get(f"{base}/healthz")
    assert ready.status_code == 200
    assert down.status_code == 503 and alive.status_code == 200
    dead = f"127.0.0.1:{free_port()}"
    async with serve_asgi(build_app(settings, dead)) as base, httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/readyz")).status_code == 503


@contextlib.asynccontextmanager
async def _silent_listener() -> AsyncIterator[str]:
    """An address that accepts connections and never answers: a hung or black-holed replica."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_readyz_is_ready_while_any_configured_policy_address_serves(
    settings: Settings, policy: PolicyServer, policy_addr: str
) -> None:
    """MONOMCP_POLICY_ADDR listing several replicas: the client fails over to whichever
    answers, so the front is ready while one of them serves, whatever its place in the list,
    and not ready once none does."""
    second = await start(settings, "127.0.0.1:0")
    stopped = f"127.0.0.1:{second.port}"
    await second.stop(0)  # a real policy address whose service is gone (connections refused)
    async with _silent_listener() as hung:
        lists = [f"ipv4:{stopped},{policy_addr}", f"ipv4:{hung},{policy_addr}", f"ipv4:{policy_addr},{hung}"]
        async with contextlib.AsyncExitStack() as stack, httpx.AsyncClient() as http:
            bases = [await stack.enter_async_context(serve_asgi(build_app(settings, both))) for both in lists]
            ready = [(await http.get(f"{base}/readyz")).status_code for base in bases]
            await policy.server.stop(0)
            down = [(await http.get(f"{base}/readyz")).status_code for base in bases]
    assert ready == [200, 200, 200]
    assert down == [503, 503, 503]


class _Relay:
    """A TCP relay to a real policy service that can freeze: connections stay open and
    nothing passes, as when the replica's host hangs or the network drops its packets."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()

    def freeze(self) -> None:
        self._flowing.clear()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        for pump in (self._pump(reader, up_writer), self._pump(up_reader, writer)):
            task = asyncio.get_running_loop().create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        try:
            yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        finally:
            for task in list(self._tasks):
                task.cancel()
            server.close()


async def test_readyz_stays_ready_when_the_replica_it_was_talking_to_hangs(
    settings: Settings, policy: PolicyServer, policy_addr: str
) -> None:
    """Two serving replicas, the first reached through a relay that then freezes: calls
    still have the second, so the front stays ready (a health channel that had picked the
    first would time out on it and take the front out of service)."""
    second = await start(settings, "127.0.0.1:0")
    relay = _Relay(second.port)
    try:
        async with relay.serving() as first, httpx.AsyncClient() as http:
            async with serve_asgi(build_app(settings, f"ipv4:{first},{policy_addr}")) as base:
                before = (await http.get(f"{base}/readyz")).status_code
                relay.freeze()
                hung = [(await http.get(f"{base}/readyz")).status_code for _ in range(3)]
                await policy.server.stop(0)
                neither = (await http.get(f"{base}/readyz")).status_code
    finally:
        await second.stop(0)
    assert before == 200
    assert hung == [200, 200, 200]
    assert neither == 503
