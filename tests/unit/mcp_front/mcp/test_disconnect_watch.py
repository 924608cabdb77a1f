"""`DisconnectWatch`: a call hears that its client left, as the watcher task per call did,
without the task (docs/adr/0040); closing the watch lets the pending `receive()` go."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message

from mcp_front.mcp.relay import ClientChannel, ClientRelay, RelayHub, guard, relay_from


class _Client:
    """uvicorn's receive() after the body was read: the replayed body, then a wait for the end."""

    def __init__(self, replayed: bool = True) -> None:
        self.gone = asyncio.Event()
        self.replayed = not replayed
        self.waiting = 0
        self.let_go = 0

    async def receive(self) -> Message:
        if not self.replayed:
            self.replayed = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        self.waiting += 1
        try:
            await self.gone.wait()
        except GeneratorExit:
            self.let_go += 1
            raise
        return {"type": "http.disconnect"}


async def _no_send(message: Message) -> None:
    return None


async def _turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_client_that_leaves_is_heard_once() -> None:
    client, heard = _Client(), []
    watch = ClientChannel(_no_send, client.receive).watch(lambda: heard.append(1))
    await _turns()
    assert heard == [] and client.waiting == 1  # the replayed body was passed over
    client.gone.set()
    await _turns()
    assert heard == [1]
    watch.close()
    assert client.waiting == 1  # nothing asked again after the disconnect


async def test_a_closed_watch_lets_the_pending_receive_go() -> None:
    client, heard = _Client(), []
    watch = ClientChannel(_no_send, client.receive).watch(lambda: heard.append(1))
    await _turns()
    watch.close()
    assert client.let_go == 1
    client.gone.set()
    await _turns()
    assert heard == [] and client.waiting == 1


async def test_closing_after_the_wake_up_was_scheduled_asks_nothing_more() -> None:
    client, heard = _Client(), []
    watch = ClientChannel(_no_send, client.receive).watch(lambda: heard.append(1))
    await _turns()
    client.gone.set()  # the waiting future's callback is now scheduled, not yet run
    watch.close()
    await _turns()
    assert heard == [] and client.waiting == 1


async def test_a_receive_that_yields_bare_is_stepped_again() -> None:
    heard: list[int] = []
    turns = 0

    async def receive() -> Message:
        nonlocal turns
        while turns < 3:
            turns += 1
            await asyncio.sleep(0)  # a bare yield, as anyio's checkpoints do
        return {"type": "http.disconnect"}

    watch = ClientChannel(_no_send, receive).watch(lambda: heard.append(1))
    await _turns(6)
    assert heard == [1]
    watch.close()


async def test_a_receive_that_fails_ends_the_watch_quietly() -> None:
    heard: list[int] = []

    async def receive() -> Message:
        raise RuntimeError("gone wrong")

    watch = ClientChannel(_no_send, receive).watch(lambda: heard.append(1))
    await _turns()
    watch.close()
    assert heard == []


def _relay(channel: ClientChannel) -> ClientRelay:
    return relay_from(channel, None, 7, "owner", "acme/tools", RelayHub(), modern=False)


async def test_guard_cancels_the_work_when_the_client_leaves() -> None:
    client = _Client()
    relay = _relay(ClientChannel(_no_send, client.receive))
    started = asyncio.Event()

    async def work() -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    guarded = asyncio.create_task(guard(relay, work()))
    await started.wait()
    client.gone.set()
    assert await guarded is None
    assert relay.cancel_requested


async def test_guard_returns_the_result_and_stops_watching() -> None:
    client = _Client()
    relay = _relay(ClientChannel(_no_send, client.receive))

    async def work() -> dict[str, Any]:
        await _turns()
        return {"ok": True}

    assert await guard(relay, work()) == {"ok": True}
    assert client.let_go == 1
