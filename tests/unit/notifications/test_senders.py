"""Webhook deliveries go only where the egress policy allows, and to the address it checked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from policy_service.notifications.senders import DeliveryFailed, Senders, SmtpSettings
from policy_service.storage.models import NotificationChannel
from policy_service.toolkits.egress import EgressPolicy
from tests.support.servers import serve_asgi

BODY = {"type": "approval.pending", "approval": {"id": "a1"}}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[str]]]:
    """A loopback webhook receiver; yields its port and the Host header of every POST."""
    hosts: list[str] = []

    async def hook(request: Request) -> Response:
        hosts.append(request.headers["host"])
        return Response(status_code=204)

    async with serve_asgi(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        yield int(url.rsplit(":", 1)[1]), hosts


def _channel(target: str) -> NotificationChannel:
    return NotificationChannel(id="c1", org_id="o1", name="ops", kind="webhook", target=target, secret_salt="s")


async def _send(egress: EgressPolicy, target: str) -> int:
    async with httpx.AsyncClient(follow_redirects=False) as http:
        senders = Senders(egress, SmtpSettings("", 0, ""), 5.0, http)
        return await senders.send(_channel(target), "whsec_x", "d1", BODY)


async def test_loopback_and_metadata_targets_are_refused(receiver: tuple[int, list[str]]) -> None:
    port, hosts = receiver
    for target in (f"http://127.0.0.1:{port}/hook", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(DeliveryFailed, match="address"):
            await _send(EgressPolicy(), target)
    assert hosts == []


async def test_the_post_goes_to_the_address_that_was_checked(receiver: tuple[int, list[str]]) -> None:
    """No second DNS lookup: a name that rebinds between the check and the connection (the
    resolver here knows a name the system resolver does not) cannot redirect the POST."""
    port, hosts = receiver

    async def resolver(host: str, _port: int) -> list[str]:
        return ["127.0.0.1"] if host == "hooks.invalid" else []

    egress = EgressPolicy(allow_private=True, resolver=resolver)
    assert await _send(egress, f"http://hooks.invalid:{port}/hook") == 204
    assert hosts == [f"hooks.invalid:{port}"]


async def test_the_receivers_answer_body_is_never_read() -> None:
    """Only the status matters. A receiver (any org admin's) that answered with an endless
    body used to be read to its end, in memory, by the policy service every tenant shares."""
    chunk, chunks = b"x" * 65_536, 1024  # 64 MiB, far beyond any socket buffer
    sent = [0]

    def body() -> Iterator[bytes]:
        for _ in range(chunks):
            sent[0] += 1
            yield chunk

    async def hook(request: Request) -> Response:
        return StreamingResponse(body(), status_code=200)

    async with serve_asgi(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        assert await _send(EgressPolicy(allow_private=True), f"{url}/hook") == 200
    assert sent[0] < chunks
