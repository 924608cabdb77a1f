"""Local stand-ins for where notifications go: an HTTP webhook receiver and an SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from starlette.requests import Request
from starlette.responses import Response

from tests.support.servers import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Records every POST; `fail[path]` answers that many 503s first; `hold[path]` blocks
    answers on that path until the event is set."""

    received: list[Received] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        path = request.url.path
        self.received.append(Received(path, {k.lower(): v for k, v in request.headers.items()}, body))
        self.arrived.set()
        if path in self.hold:
            await self.hold[path].wait()
        if self.fail.get(path, 0) > 0:
            self.fail[path] -= 1
            await Response("try later", status_code=503)(scope, receive, send)
            return
        await Response("ok")(scope, receive, send)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, seconds: float = 15.0) -> list[Received]:
        """Waits (bounded) until `count` requests reached `path`; returns them."""
        deadline = asyncio.get_running_loop().time() + seconds
        while len(self.at(path)) < count and asyncio.get_running_loop().time() < deadline:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.2)
            except TimeoutError:
                pass
        return self.at(path)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    """A real SMTP server (aiosmtpd) on loopback; yields its port and the messages it took."""
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox.messages
    finally:
        controller.stop()
