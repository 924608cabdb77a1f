"""How the front's upstream pool connects: to the address it checked (no second DNS
lookup to rebind), with the original Host name, one lookup per pooled connection, and
never following a redirect."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from mcp_front.backends.upstream import NOT_ALLOWED, UpstreamError, UpstreamPool
from policy_service.toolkits.egress import EgressPolicy, ResolveFailed
from tests.support.era_backends import EraRecorder
from tests.support.servers import free_port, serve_asgi
from tests.support.upstream import Upstream


class FakeDns:
    """DNS is outside the project: a table of answers that counts lookups."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise ResolveFailed(f"{host} did not resolve")
        return self.answers[host]


@pytest.fixture
async def any_host_upstream() -> AsyncIterator[tuple[Upstream, int]]:
    backend = Upstream()
    port = free_port()
    async with serve_asgi(backend.app(any_host=True), port):
        yield backend, port


def loopback_only(dns: FakeDns) -> EgressPolicy:
    return EgressPolicy(networks=(ipaddress.ip_network("127.0.0.0/8"),), resolver=dns)


async def test_calls_go_to_the_checked_address_with_the_original_host_name(
    any_host_upstream: tuple[Upstream, int],
) -> None:
    backend, port = any_host_upstream
    dns = FakeDns({"backend.test": ["127.0.0.1"]})
    pool = UpstreamPool(egress=loopback_only(dns))
    try:
        for n in range(3):
            result = await pool.call_tool(f"http://backend.test:{port}/mcp", {}, "echo", {"text": f"{n}"}, 5.0)
            assert result["content"][0]["text"] == f"{n}"
    finally:
        await pool.close()
    assert backend.calls["echo"] == 3
    assert {r.host for r in backend.requests} == {f"backend.test:{port}"}
    assert dns.lookups == ["backend.test"]  # one lookup for the pooled connection, none per call


async def test_a_name_resolving_to_a_disallowed_address_is_never_connected_to(
    any_host_upstream: tuple[Upstream, int],
) -> None:
    backend, port = any_host_upstream
    # Public when the toolkit was saved, rebound to loopback now; or one bad address among good ones.
    dns = FakeDns({"rebound.test": ["127.0.0.1"], "mixed.test": ["127.0.0.1", "10.0.0.5"]})
    pool = UpstreamPool(egress=EgressPolicy(resolver=dns))
    mixed = UpstreamPool(egress=loopback_only(dns))
    try:
        for target, url in ((pool, f"http://rebound.test:{port}/mcp"), (mixed, f"http://mixed.test:{port}/mcp")):
            with pytest.raises(UpstreamError) as caught:
                await target.call_tool(url, {}, "echo", {"text": "x"}, 5.0)
            assert caught.value.public == NOT_ALLOWED
            assert "test" not in caught.value.public and str(port) not in caught.value.public
    finally:
        await pool.close()
        await mixed.close()
    assert backend.requests == []


async def test_a_redirect_from_a_backend_is_not_followed(any_host_upstream: tuple[Upstream, int]) -> None:
    internal, internal_port = any_host_upstream

    async def redirect(request: Request) -> RedirectResponse:
        return RedirectResponse(f"http://127.0.0.1:{internal_port}/mcp", status_code=307)

    app = Starlette(routes=[Route("/mcp", redirect, methods=["POST"])])
    async with serve_asgi(app) as base:
        pool = UpstreamPool(egress=EgressPolicy(allow_private=True))
        try:
            with pytest.raises(UpstreamError, match="HTTP 307"):
                await pool.call_tool(f"{base}/mcp", {}, "echo", {"text": "x"}, 5.0)
        finally:
            await pool.close()
    assert internal.requests == []


async def test_concurrent_first_calls_share_one_handshake_and_one_discover() -> None:
    """The pool asks a backend once per tenant, however many first calls arrive together:
    one `initialize` for the handshake session, one `server/discover` for the era verdict."""
    recorder = EraRecorder(Upstream(stateful=True).app())
    pool = UpstreamPool(egress=EgressPolicy(allow_private=True))
    try:
        async with serve_asgi(recorder) as base:
            for scope, modern in (("handshake", False), ("modern", True)):
                calls = [
                    pool.call_tool(f"{base}/mcp", {}, "echo", {"text": f"{n}"}, 5.0, scope=scope, modern=modern)
                    for n in range(8)
                ]
                results = await asyncio.gather(*calls)
                assert [r["content"][0]["text"] for r in results] == [f"{n}" for n in range(8)]
    finally:
        await pool.close()
    assert recorder.methods().count("initialize") == 1
    assert recorder.methods().count("server/discover") == 1
    assert recorder.versions("tools/call").count("2026-07-28") == 8
