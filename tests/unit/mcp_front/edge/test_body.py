"""`read_body`: the body within its size and time budget, whether `receive()` answers at once
(the body came with the head: no timer is armed) or has to wait (docs/adr/0040)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message, Scope

from mcp_front.edge.body import BodyTimeout, BodyTooLarge, read_body

SCOPE: Scope = {"type": "http", "headers": []}


class _Client:
    """A receive() that answers from a queue, waiting when it is empty."""

    def __init__(self, *messages: Message) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        for message in messages:
            self.queue.put_nowait(message)
        self.waits = 0
        self.left_waiting = False

    async def receive(self) -> Message:
        if self.queue.empty():
            self.waits += 1
        try:
            return await self.queue.get()
        except asyncio.CancelledError:
            self.left_waiting = True
            raise


def _part(body: bytes, more: bool = False) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_that_came_with_the_head_is_read_without_waiting() -> None:
    client = _Client(_part(b'{"a":1}'))
    assert await read_body(SCOPE, client.receive, 100, 5.0) == b'{"a":1}'
    assert client.waits == 0


async def test_a_body_in_parts_that_arrive_later_is_joined() -> None:
    client = _Client()

    async def send_later() -> None:
        await asyncio.sleep(0)
        client.queue.put_nowait(_part(b"ab", more=True))
        await asyncio.sleep(0)
        client.queue.put_nowait(_part(b"cd"))

    sender = asyncio.create_task(send_later())
    assert await read_body(SCOPE, client.receive, 100, 5.0) == b"abcd"
    assert client.waits >= 1
    await sender


async def test_the_first_part_at_once_and_the_rest_later() -> None:
    client = _Client(_part(b"ab", more=True))
    asyncio.get_running_loop().call_soon(client.queue.put_nowait, _part(b"cd"))
    assert await read_body(SCOPE, client.receive, 100, 5.0) == b"abcd"


@pytest.mark.parametrize("first", [[], [_part(b"ab", more=True)]])
async def test_a_body_that_never_ends_is_cut_off_at_the_deadline(first: list[Message]) -> None:
    client = _Client(*first)
    with pytest.raises(BodyTimeout):
        await read_body(SCOPE, client.receive, 100, 0.05)
    assert client.left_waiting


async def test_a_cancelled_reader_is_cancelled_not_timed_out() -> None:
    client = _Client()
    reader = asyncio.create_task(read_body(SCOPE, client.receive, 100, 30.0))
    await asyncio.sleep(0.01)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert client.left_waiting  # the cancellation reached the waiting receive()


@pytest.mark.parametrize("first", [[], [_part(b"ab", more=True)]])
async def test_a_client_that_leaves_mid_body_is_a_disconnect(first: list[Message]) -> None:
    client = _Client(*first)
    asyncio.get_running_loop().call_soon(client.queue.put_nowait, {"type": "http.disconnect"})
    with pytest.raises(ClientDisconnect):
        await read_body(SCOPE, client.receive, 100, 5.0)


@pytest.mark.parametrize("later", [False, True])
async def test_a_body_past_the_limit_is_refused_as_it_streams(later: bool) -> None:
    client = _Client(_part(b"x" * 60, more=True))
    if later:
        asyncio.get_running_loop().call_soon(client.queue.put_nowait, _part(b"y" * 60))
    else:
        client.queue.put_nowait(_part(b"y" * 60))
    with pytest.raises(BodyTooLarge):
        await read_body(SCOPE, client.receive, 100, 5.0)


async def test_a_declared_length_past_the_limit_is_refused_unread() -> None:
    client = _Client(_part(b"x"))
    with pytest.raises(BodyTooLarge):
        await read_body({"type": "http", "headers": [(b"content-length", b"101")]}, client.receive, 100, 5.0)
    assert client.queue.qsize() == 1
