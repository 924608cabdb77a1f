"""Limits before work: the credential before the body, bounded headers and reads, and
per-key rate and concurrency limits (in-process, or shared through Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from mcp_front.app import build_app
from mcp_front.edge.protocol import server_options
from policy_service.config import Settings
from tests.conftest import World, mcp_client
from tests.support.servers import free_port, serve_asgi

ACCEPT = {"Accept": "application/json, text/event-stream"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
REDIS_URL = "redis://127.0.0.1:6379/0"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **ACCEPT}


@contextlib.asynccontextmanager
async def _front(settings: Settings, policy_addr: str, **overrides: Any) -> AsyncIterator[str]:
    async with serve_asgi(build_app(settings.model_copy(update=overrides), policy_addr)) as base:
        yield base


@contextlib.asynccontextmanager
async def _production_server(settings: Settings, policy_addr: str, **overrides: Any) -> AsyncIterator[int]:
    """The front under the uvicorn options `monomcp serve front` uses."""
    tuned = settings.model_copy(update=overrides)
    port = free_port()
    options = {**server_options(tuned), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(build_app(tuned, policy_addr), host="127.0.0.1", port=port, **options))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _audit_statuses(world: World) -> list[str]:
    return [r.status for r in (await world.operator.query_audit("", page_size=500)).records if r.source == "mcp"]


async def test_credential_is_checked_before_the_body_is_read(world: World, front: str) -> None:
    host, port = front.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /acme/tools/mcp HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer mmcp_bogus\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: 1048576\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)  # not one body byte was sent
    writer.close()
    assert head.startswith(b"HTTP/1.1 401 ")


async def test_oversized_authorization_header_never_reaches_the_policy_service(world: World, front: str) -> None:
    async with httpx.AsyncClient() as http:
        huge = await http.post(f"{front}/acme/tools/mcp", headers=_auth("mmcp_" + "a" * 20_000), json=PING)
        long = await http.post(f"{front}/acme/tools/mcp", headers=_auth("mmcp_" + "a" * 5_000), json=PING)
        odd = await http.post(f"{front}/acme/tools/mcp", headers=_auth('mmcp_a"<b>'), json=PING)
    assert huge.status_code == 431
    assert long.status_code == odd.status_code == 401
    assert "malformed bearer token" in long.json()["error"]["message"]
    records = [r for r in (await world.operator.query_audit("", page_size=50)).records if r.source == "mcp"]
    assert [(r.status, r.error, r.actor_id) for r in records] == [("unauthenticated", "malformed bearer token", "")] * 2


async def test_server_caps_headers_while_they_stream_in(world: World, settings: Settings, policy_addr: str) -> None:
    start = b"POST /acme/tools/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
    async with _production_server(settings, policy_addr, max_header_bytes=16_384) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(start + b"a" * 40_000)  # over the cap, headers never finished
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        _, flood = await asyncio.open_connection("127.0.0.1", port)
        sent = len(start)
        flood.write(start)
        with contextlib.suppress(ConnectionError):
            while sent < 20_000_000:  # a 20 MB header is cut off long before it is all sent
                flood.write(b"a" * 65_536)
                await asyncio.wait_for(flood.drain(), 10)
                sent += 65_536
        flood.close()
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert sent < 4_000_000
    assert await _audit_statuses(world) == []


async def test_slow_senders_are_cut_off(world: World, settings: Settings, policy_addr: str) -> None:
    async with _production_server(settings, policy_addr, header_timeout_seconds=0.5, body_timeout_seconds=0.5) as port:
        slow_headers = await asyncio.open_connection("127.0.0.1", port)
        slow_headers[1].write(f"POST /acme/tools/mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        slow_body = await asyncio.open_connection("127.0.0.1", port)
        slow_body[1].write(
            f"POST /acme/tools/mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {world.keys['acme:member']}\r\nContent-Type: application/json\r\n"
            'Accept: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc":'.encode()
        )
        headers_answer = await asyncio.wait_for(slow_headers[0].read(), 10)  # EOF: the server closed it
        body_answer = await asyncio.wait_for(slow_body[0].read(), 10)
        for _, writer in (slow_headers, slow_body):
            writer.close()
    assert headers_answer.startswith(b"HTTP/1.1 408 ")
    assert body_answer.startswith(b"HTTP/1.1 408 ")
    assert "invalid" in await _audit_statuses(world)


async def _post(http: httpx.AsyncClient, base: str, token: str) -> httpx.Response:
    return await http.post(f"{base}/acme/shared/mcp", headers=_auth(token), json=PING)


async def test_rate_limit_per_key_answers_429_and_is_audited(
    world: World, settings: Settings, policy_addr: str
) -> None:
    async with _front(settings, policy_addr, rate_limit_per_second=0.001, rate_limit_burst=2) as base:
        async with httpx.AsyncClient() as http:
            flood = [await _post(http, base, world.keys["acme:member"]) for _ in range(4)]
            other = await _post(http, base, world.keys["globex:member"])
    assert [r.status_code for r in flood] == [200, 200, 429, 429]
    assert int(flood[2].headers["retry-after"]) >= 1
    assert other.status_code == 200  # another org's key is not affected
    limited = (await world.operator.query_audit("", status="rate_limited")).records
    assert len(limited) == 2 and {r.actor_id for r in limited} == {limited[0].actor_id} != {""}


def _slow_call(seconds: float) -> dict[str, Any]:
    arguments = {"seconds": seconds}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": arguments}}


async def _one_in_flight(world: World, bases: list[str]) -> list[int]:
    """Holds one slow call from acme:member on bases[0], then tries a second on every base."""
    async with httpx.AsyncClient(timeout=30) as http:
        url = f"{bases[0]}/acme/tools/mcp"
        held = asyncio.create_task(http.post(url, headers=_auth(world.keys["acme:member"]), json=_slow_call(1.5)))
        while world.upstream.calls["slow"] == 0:  # noqa: ASYNC110 - the upstream has no event to wait on
            await asyncio.sleep(0.01)
        second = [(await _post(http, base, world.keys["acme:member"])).status_code for base in bases]
        other = await _post(http, bases[-1], world.keys["acme:admin"])
        assert (await held).status_code == 200
    return [*second, other.status_code]


async def test_concurrency_limit_per_key(world: World, settings: Settings, policy_addr: str) -> None:
    async with _front(settings, policy_addr, max_concurrent_per_key=1) as base:
        assert await _one_in_flight(world, [base]) == [429, 200]
    assert "rate_limited" in await _audit_statuses(world)


async def test_an_organization_is_limited_as_a_whole(world: World, settings: Settings, policy_addr: str) -> None:
    """Its keys share one budget: a key it never used is refused once the others spent it."""
    async with _front(settings, policy_addr, org_rate_limit_per_second=0.001, org_rate_limit_burst=3) as base:
        async with httpx.AsyncClient() as http:
            spent = [await _post(http, base, world.keys[f"acme:{role}"]) for role in ("member", "admin", "member")]
            fresh_key = await _post(http, base, world.keys["acme:admin2"])
            other = await _post(http, base, world.keys["globex:member"])
    assert [r.status_code for r in spent] == [200, 200, 200]
    assert fresh_key.status_code == 429 and int(fresh_key.headers["retry-after"]) >= 1
    assert "rate limit of this organization exceeded" in fresh_key.text
    assert other.status_code == 200  # another org's budget is its own
    limited = (await world.operator.query_audit("", status="rate_limited")).records
    assert [r.error for r in limited] == ["rate limit of this organization exceeded"]


async def test_an_organization_has_a_bound_on_requests_in_flight(
    world: World, settings: Settings, policy_addr: str
) -> None:
    async with _front(settings, policy_addr, max_concurrent_per_org=1) as base:
        async with httpx.AsyncClient(timeout=30) as http:
            url = f"{base}/acme/tools/mcp"
            held = asyncio.create_task(http.post(url, headers=_auth(world.keys["acme:member"]), json=_slow_call(1.5)))
            while world.upstream.calls["slow"] == 0:  # noqa: ASYNC110 - the upstream has no event to wait on
                await asyncio.sleep(0.01)
            same_org = await _post(http, base, world.keys["acme:admin"])
            other = await _post(http, base, world.keys["globex:member"])
            assert (await held).status_code == 200
            after = await _post(http, base, world.keys["acme:admin"])
    assert same_org.status_code == 429 and "too many requests in flight for this organization" in same_org.text
    assert other.status_code == 200
    assert after.status_code == 200  # the slot came back with the answer


async def test_a_2026_listen_stream_holds_no_slot(world: World, settings: Settings, policy_addr: str) -> None:
    """`subscriptions/listen` is 2026-07-28's standing stream (the initialize era's GET): open for
    as long as the client listens, and bounded per credential by the stream hub. Like a GET it
    gives its key's and its org's in-flight slots back once open; before, each open listen held
    both for its whole life, so an org's listening clients (an IDE each) used up the org's
    in-flight budget and every other request of the org was refused."""
    limits = {"max_concurrent_per_org": 1, "max_concurrent_per_key": 1}
    async with _front(settings, policy_addr, **limits) as base:
        url = f"{base}/acme/shared/mcp"
        async with mcp_client(url, world.keys["acme:member"], "2026-07-28") as client:
            async with client.listen(tools_list_changed=True) as listening:
                assert listening.honored.tools_list_changed
                async with httpx.AsyncClient() as http:
                    same_key = await _post(http, base, world.keys["acme:member"])
                    same_org = await _post(http, base, world.keys["acme:admin"])
    assert (same_key.status_code, same_org.status_code) == (200, 200)


async def test_a_signed_in_person_is_limited_across_all_their_sign_ins(
    world: World, settings: Settings, policy_addr: str
) -> None:
    """Every sign-in is a new bearer: without a budget per person, signing in again would
    buy a fresh per-key budget (and a few sign-ins could spend the whole org's)."""
    password = "correct horse battery staple"
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "lim@acme.example", "Lim", "member", password)
    login = {"email": "lim@acme.example", "password": password, "org": "acme"}
    async with _front(settings, policy_addr, rate_limit_per_second=0.001, rate_limit_burst=2) as base:
        async with httpx.AsyncClient() as http:
            first, second = [(await http.post(f"{base}/api/v1/auth/login", json=login)).json() for _ in range(2)]
            tokens = (first["access_token"], second["access_token"], first["access_token"])
            statuses = [await _post(http, base, token) for token in tokens]
            colleague = await _post(http, base, world.keys["acme:member"])
    assert first["access_token"] != second["access_token"]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert "rate limit of this account exceeded" in statuses[2].text
    assert colleague.status_code == 200


async def test_two_fronts_share_one_organization_limit_through_redis(
    world: World, settings: Settings, policy_addr: str, redis_url: str
) -> None:
    # Fresh orgs: Redis outlives the test, and org slugs (unlike key hashes) repeat between runs.
    orgs = ["limits-" + secrets.token_hex(4) for _ in range(2)]
    keys: list[str] = []
    for org in orgs:
        await world.operator.create_org(org, "Limits")
        keys += [(await world.operator.create_api_key(org, f"key {i}", "member")).secret for i in range(3)]
    shared = {"redis_url": redis_url, "org_rate_limit_per_second": 0.001, "org_rate_limit_burst": 2}
    async with _front(settings, policy_addr, **shared) as one, _front(settings, policy_addr, **shared) as two:
        async with httpx.AsyncClient() as http:
            fronts = (one, two, two)
            statuses = [(await _post(http, base, key)).status_code for base, key in zip(fronts, keys[:3], strict=True)]
            other = await _post(http, one, keys[3])
    assert statuses == [200, 200, 429]
    assert other.status_code == 200


async def test_a_summary_of_throttled_requests_from_one_address_names_no_tenant(
    world: World, settings: Settings, policy_addr: str
) -> None:
    """Past 20 rows a second, refusals for the rate are summed up per client address, and one
    address can front many tenants: the summary must not pin them all on the last caller."""
    async with _front(settings, policy_addr, rate_limit_per_second=0.001, rate_limit_burst=1) as base:
        async with httpx.AsyncClient() as http:
            callers = [world.keys["acme:member"]] * 24 + [world.keys["globex:member"]] * 4
            await asyncio.gather(*(_post(http, base, key) for key in callers))
            for _ in range(100):  # the summary is written once its second is over
                rows = (await world.operator.query_audit("", status="rate_limited", page_size=100)).records
                summaries = [r for r in rows if "more like it" in r.error]
                if summaries:
                    break
                await asyncio.sleep(0.05)
    assert len(summaries) == 1, [r.error for r in rows]
    assert "more like it from this address within one second" in summaries[0].error
    assert summaries[0].actor_id == ""


@pytest.fixture
async def redis_url() -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    finally:
        await client.aclose()
    return REDIS_URL


async def test_two_fronts_share_one_rate_limit_through_redis(
    world: World, settings: Settings, policy_addr: str, redis_url: str
) -> None:
    shared = {"redis_url": redis_url, "rate_limit_per_second": 0.001, "rate_limit_burst": 2}
    async with _front(settings, policy_addr, **shared) as one, _front(settings, policy_addr, **shared) as two:
        async with httpx.AsyncClient() as http:
            statuses = [(await _post(http, base, world.keys["acme:member"])).status_code for base in (one, two, two)]
            other = await _post(http, one, world.keys["globex:member"])
    assert statuses == [200, 200, 429]
    assert other.status_code == 200


async def test_two_fronts_share_one_concurrency_limit_through_redis(
    world: World, settings: Settings, policy_addr: str, redis_url: str
) -> None:
    shared = {"redis_url": redis_url, "max_concurrent_per_key": 1}
    async with _front(settings, policy_addr, **shared) as one, _front(settings, policy_addr, **shared) as two:
        assert await _one_in_flight(world, [one, two]) == [429, 429, 200]


async def test_unreachable_redis_falls_back_to_local_limits(world: World, settings: Settings, policy_addr: str) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    async with _front(
        settings, policy_addr, redis_url=unreachable, rate_limit_burst=1, rate_limit_per_second=0.001
    ) as base:
        async with httpx.AsyncClient() as http:
            statuses = [(await _post(http, base, world.keys["acme:member"])).status_code for _ in range(2)]
    assert statuses == [200, 429]


async def test_a_silent_redis_is_not_asked_again_on_every_request(
    world: World, settings: Settings, policy_addr: str
) -> None:
    """A Redis that accepts connections and never answers (hung, or a half-open path) cost every
    request one socket timeout per limiter (per key and per org: ~1 s) for as long as it lasted,
    every tenant's requests alike. After a failure the replica keeps to its own limits for a
    while instead of asking again on every request."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    redis_url = f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    async with server, _front(settings, policy_addr, redis_url=redis_url, max_concurrent_per_org=1) as base:
        async with httpx.AsyncClient(timeout=30) as http:
            statuses = [(await _post(http, base, world.keys["acme:member"])).status_code for _ in range(6)]
        for writer in connections:
            writer.close()
    assert statuses == [200] * 6  # served on this replica's own limits
    # The relay channel's subscription, and the first request finding Redis silent once per
    # limiter (per key, per org); before, two more on every request.
    assert len(connections) <= 3


async def test_default_limits_let_a_busy_client_burst_and_stop_a_flood(
    world: World, settings: Settings, policy_addr: str
) -> None:
    """The production defaults (the suite's own settings lift them): a burst of 200 at c=32
    passes; 100 slow calls in flight at once from one key are more than it may hold."""
    names = ("rate_limit_per_second", "rate_limit_burst", "max_concurrent_per_key")
    defaults = settings.model_copy(update={n: Settings.model_fields[n].default for n in names})
    key = world.keys["acme:member"]
    async with serve_asgi(build_app(defaults, policy_addr)) as base:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=32)) as http:
            burst = await asyncio.gather(*(_post(http, base, key) for _ in range(200)))
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100), timeout=30) as http:
            slow = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "slow", "arguments": {"seconds": 1.0}},
            }
            flood = await asyncio.gather(
                *(http.post(f"{base}/acme/tools/mcp", headers=_auth(key), json=slow) for _ in range(100))
            )
    assert {r.status_code for r in burst} == {200}
    assert any(r.status_code == 429 for r in flood)


async def test_slow_headers_on_a_kept_alive_connection_are_cut_off(settings: Settings, policy_addr: str) -> None:
    """The header deadline is armed only while a head is incomplete (docs/adr/0033): a second
    request on a kept-alive connection that never finishes its head is still cut off, and a
    connection whose heads arrive whole is served past the deadline."""
    async with _production_server(settings, policy_addr, header_timeout_seconds=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # whole heads, spread over more than the deadline
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            await asyncio.sleep(0.3)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())  # never finished
        answer = await asyncio.wait_for(reader.read(), 10)  # EOF: the server closed it
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_inventing_a_bearer_per_request_is_limited_by_address(
    world: World, settings: Settings, policy_addr: str
) -> None:
    """Scanner: every request carries a fresh, well-formed, bogus key. Per-key limits never see
    the same key twice; the per-address budget of failed credentials stops it without asking
    the policy service, and the refusals are audited."""
    strict = settings.model_copy(update={"auth_failures_per_second": 1.0, "auth_failure_burst": 10})
    async with serve_asgi(build_app(strict, policy_addr)) as base, httpx.AsyncClient() as http:
        statuses = []
        for _ in range(40):
            bogus = "mmcp_" + secrets.token_hex(27)
            statuses.append((await http.post(f"{base}/acme/tools/mcp", headers=_auth(bogus), json=PING)).status_code)
        assert statuses[:10] == [401] * 10 and statuses.count(429) >= 25
    rows = [r for r in (await world.operator.query_audit("", page_size=500)).records if r.source == "mcp"]
    assert rows and {r.status for r in rows} == {"unauthenticated", "rate_limited"}


async def test_a_refusal_before_the_body_says_the_connection_closes(
    world: World, settings: Settings, policy_addr: str
) -> None:
    """A request refused before its body arrived (unknown toolkit, bad key, 429) has its
    connection closed after the answer, so the unread body is never read. Before, the answer
    did not say so (no `Connection: close`): clients such as httpx sent their next request on
    the pooled connection and got a reset. A request whose body came keeps its connection."""
    body = json.dumps(PING).encode()
    head = (
        f"POST /acme/no-such-toolkit/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {world.keys['acme:member']}\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    async with _production_server(settings, policy_addr, allowed_hosts="127.0.0.1") as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)  # the body is not sent yet: the 404 comes first
        early = await asyncio.wait_for(reader.read(), 10)  # read() returns when the server closes
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body + head + body)  # two whole requests on one connection
        both = b""
        while both.count(b"HTTP/1.1 404") < 2:
            chunk = await asyncio.wait_for(reader.read(65_536), 10)
            assert chunk, both
            both += chunk
        writer.close()
    assert early.startswith(b"HTTP/1.1 404") and b"\r\nconnection: close\r\n" in early.lower()
    assert b"connection: close" not in both.lower()
