"""A backend's answer is bounded however it is framed. Any org admin chooses a backend, and the
front that reads it serves every tenant: an unbounded answer is an outage for all of them.

Regression: the cap once applied to Content-Length bodies only. Through the gateway, a 300 MB
chunked JSON answer took one front to 7.8 GB of memory and kept it there. And a close-delimited
answer read by `post` was cut at whatever had arrived in the first read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mcp_front.backends.http11 import _MAX_BODY_BYTES, Http11Client, HttpError, ResponseTooLarge
from policy_service.toolkits.egress import EgressPolicy

_CHUNK = b"a" * 1_048_576
_CHUNKS = _MAX_BODY_BYTES // len(_CHUNK) + 1  # one MiB over the cap


async def _answer(framing: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")), 0
    )
    await reader.readexactly(length)
    try:
        if framing == "chunked":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(_CHUNKS):
                writer.write(b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:  # the body ends when the connection does
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n")
            for _ in range(_CHUNKS):
                writer.write(_CHUNK)
                await writer.drain()
        await writer.drain()
    except ConnectionError:
        pass  # the client stopped reading: what a bounded reader does
    finally:
        writer.close()


@pytest.fixture(params=["chunked", "close-delimited"])
async def oversized(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    framing = str(request.param)
    server = await asyncio.start_server(lambda r, w: _answer(framing, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/mcp"


async def test_an_answer_over_the_cap_is_refused_whatever_its_framing(oversized: str) -> None:
    client = Http11Client(egress=EgressPolicy(allow_private=True))
    try:
        response = await client.open(oversized, {"content-type": "application/json"}, b"{}")
        try:
            with pytest.raises(HttpError):
                await response.read_all()
        finally:
            response.close()
    finally:
        await client.close()


async def test_post_refuses_an_answer_over_the_cap_whatever_its_framing(oversized: str) -> None:
    client = Http11Client(egress=EgressPolicy(allow_private=True))
    try:
        with pytest.raises(ResponseTooLarge) as refused:
            await client.post(oversized, {"content-type": "application/json"}, b"{}")
        assert "127.0.0.1" not in str(refused.value)  # a client may be told this message
    finally:
        await client.close()


async def _slow_close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(2)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n")
    for part in (b'{"a":"', b"x" * 200_000, b'"}'):  # the body arrives in pieces
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.close()


async def test_post_reads_a_close_delimited_answer_to_its_end() -> None:
    server = await asyncio.start_server(_slow_close_delimited, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Http11Client(egress=EgressPolicy(allow_private=True))
    try:
        async with server:
            response = await client.post(f"http://127.0.0.1:{port}/mcp", {"content-type": "application/json"}, b"{}")
        assert response.body == b'{"a":"' + b"x" * 200_000 + b'"}'
    finally:
        await client.close()
