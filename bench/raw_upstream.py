"""A raw no-op MCP upstream on asyncio streams: no SDK, no framework, the ceiling against
which the gateway's own cost per call shows most plainly (`make bench`)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

TOOL = {"name": "noop", "description": "Does nothing.", "inputSchema": {"type": "object", "properties": {}}}


def _result(message: dict[str, Any], modern: bool) -> dict[str, Any]:
    method = message.get("method")
    if method == "initialize":
        return {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw-noop", "version": "1"},
        }
    result: dict[str, Any] = {"tools": [TOOL]} if method == "tools/list" else {}
    if method == "tools/call":
        result = {"content": [{"type": "text", "text": "ok"}]}
    return {"resultType": "complete", **result} if modern else result


def answer(body: bytes, modern: bool) -> tuple[bytes, bytes]:
    """(status line, body) for one POSTed JSON-RPC message."""
    message = json.loads(body)
    if "id" not in message:
        return b"202 Accepted", b""
    reply = {"jsonrpc": "2.0", "id": message["id"], "result": _result(message, modern)}
    return b"200 OK", json.dumps(reply, separators=(",", ":")).encode()


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length, modern = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"mcp-protocol-version":
                    modern = value.strip() == b"2026-07-28"
            status, body = answer(await reader.readexactly(length), modern)
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(int(sys.argv[1])))
