"""Custom domains end to end: an org claims a domain, proves it by DNS TXT record or HTTP
token (against a local DNS server and HTTP server on loopback), and the front then serves
`https://<domain>/<toolkit>/mcp` for that org with the same visibility, 404 and
DNS-rebinding rules; spoofing an unverified domain reaches nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from policy_service import errors
from policy_service.config import Settings
from policy_service.domain_client import DomainClient
from policy_service.domains import store
from tests.conftest import World
from tests.support.dns_server import Zone, dns_server
from tests.support.servers import serve_asgi

DOMAIN = "mcp.acme.test"
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


class TokenSite:
    """The org's own web server: serves whatever token it is told to at the HTTP proof path."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"").decode()
        token = self.tokens.get(host) if scope["path"] == "/.well-known/monomcp-domain-verification" else None
        await PlainTextResponse(token or "nope", status_code=200 if token else 404)(scope, receive, send)


@pytest.fixture
async def zone() -> AsyncIterator[tuple[Zone, str]]:
    records = Zone()
    async with dns_server(records) as address:
        yield records, address


@pytest.fixture
async def site() -> AsyncIterator[tuple[TokenSite, int]]:
    app = TokenSite()
    async with serve_asgi(app) as base:
        yield app, int(base.rsplit(":", 1)[1])


@pytest.fixture
def settings(settings: Settings, zone: tuple[Zone, str], site: tuple[TokenSite, int]) -> Settings:
    return settings.model_copy(update={"dns_nameservers": zone[1], "domain_http_port": site[1]})


async def _verified(world: World, zone: Zone, domain: str = DOMAIN, org: str = "acme") -> None:
    async with world.client(f"{org}:admin") as admin:
        claimed = await DomainClient(admin).add_domain("", domain)
        zone.set(claimed.txt_record_name, "TXT", claimed.txt_record_value)
        assert (await DomainClient(admin).verify_domain("", domain, "dns")).verified


async def _post(front: str, host: str, path: str, key: str, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{front}{path}",
            json=LIST,
            headers={**MCP_HEADERS, "Host": host, "Authorization": f"Bearer {key}", **headers},
        )


async def test_dns_verification_needs_the_record_and_the_domain_is_the_claimants(
    world: World, zone: tuple[Zone, str]
) -> None:
    records, _ = zone
    async with world.client("acme:admin") as acme, world.client("globex:admin") as globex:
        claimed = await DomainClient(acme).add_domain("", "MCP.Acme.Test.")
        assert (claimed.domain, claimed.verified) == (DOMAIN, False)
        assert claimed.txt_record_name == f"_monomcp-challenge.{DOMAIN}"
        with pytest.raises(errors.FailedPrecondition) as missing:
            await DomainClient(acme).verify_domain("", DOMAIN)
        assert missing.value.reason == "DOMAIN_NOT_PROVEN" and claimed.txt_record_value in missing.value.message
        records.set(claimed.txt_record_name, "TXT", "monomcp-domain-verification=someone-elses-token")
        with pytest.raises(errors.FailedPrecondition):
            await DomainClient(acme).verify_domain("", DOMAIN, "dns")
        records.set(claimed.txt_record_name, "TXT", "unrelated", claimed.txt_record_value)
        assert (await DomainClient(acme).verify_domain("", DOMAIN, "dns")).verified
        assert [d.domain for d in await DomainClient(acme).list_domains()] == [DOMAIN]
        with pytest.raises(errors.AlreadyExists):
            await DomainClient(globex).add_domain("", DOMAIN)
        with pytest.raises(errors.NotFound):
            await DomainClient(globex).verify_domain("", DOMAIN)
        with pytest.raises(errors.NotFound):
            await DomainClient(globex).remove_domain("", DOMAIN)
        for bad in ("localhost", "10.0.0.1", "*.acme.test", "acme", "a..b.test", "127.0.0.1"):
            with pytest.raises(errors.InvalidArgument):
                await DomainClient(acme).add_domain("", bad)
    async with world.client("acme:member") as member:
        with pytest.raises(errors.PermissionDenied):
            await DomainClient(member).add_domain("", "other.acme.test")


async def test_http_token_verification(world: World, zone: tuple[Zone, str], site: tuple[TokenSite, int]) -> None:
    records, _ = zone
    tokens, _ = site
    async with world.client("acme:admin") as acme:
        claimed = await DomainClient(acme).add_domain("", "www.acme.test")
        records.set("www.acme.test", "A", "127.0.0.1")
        with pytest.raises(errors.FailedPrecondition):
            await DomainClient(acme).verify_domain("", "www.acme.test", "http")
        tokens.tokens["www.acme.test"] = claimed.verification_token
        assert not (await DomainClient(acme).list_domains())[0].verified
        assert (await DomainClient(acme).verify_domain("", "www.acme.test", "http")).verified


async def test_verified_domain_serves_the_orgs_toolkits(world: World, zone: tuple[Zone, str], front: str) -> None:
    await _verified(world, zone[0])
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {world.keys['acme:member']}", "Host": DOMAIN})
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with Client(streamable_http_client(f"{front}/tools/mcp", http_client=http)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "echo" in tools
        assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"
        pending = await client.call_tool("transfer", {"amount": 5, "to": "eve"})
        # The approval link names the domain the client used.
        assert pending.meta["monomcp/approval"]["url"].startswith(f"http://{DOMAIN}/console/approvals/")
    # The org's public toolkit is there too, and the port a client used is kept.
    response = await _post(front, f"{DOMAIN}:8443", "/shared/mcp", world.keys["globex:member"])
    assert response.status_code == 200, response.text


async def test_the_404_is_identical_and_other_orgs_see_nothing(
    world: World, zone: tuple[Zone, str], front: str
) -> None:
    await _verified(world, zone[0])
    own_host = front.removeprefix("http://")
    reference = await _post(front, own_host, "/acme/no-such-toolkit/mcp", world.keys["acme:member"])
    assert reference.status_code == 404
    answers: list[Any] = [
        await _post(front, DOMAIN, "/tools/mcp", world.keys["globex:member"]),  # private to acme
        await _post(front, DOMAIN, "/no-such-toolkit/mcp", world.keys["acme:member"]),
        await _post(front, DOMAIN, "/acme/tools/mcp", world.keys["acme:member"]),  # org paths are not on a domain
    ]
    for answer in answers:
        assert (answer.status_code, answer.content) == (404, reference.content)


async def test_spoofed_unverified_domains_reach_nothing(world: World, zone: tuple[Zone, str], front: str) -> None:
    own_host = front.removeprefix("http://")
    reference = await _post(front, own_host, "/acme/no-such-toolkit/mcp", world.keys["acme:member"])
    async with world.client("acme:admin") as acme:
        await DomainClient(acme).add_domain("", DOMAIN)  # claimed, never proven
    for host in (DOMAIN, "evil.example.com"):
        answer = await _post(front, host, "/tools/mcp", world.keys["acme:member"])
        assert (answer.status_code, answer.content) == (404, reference.content)
        assert (await _post(front, host, "/acme/tools/mcp", world.keys["acme:member"])).status_code == 421


async def test_admin_surface_answers_only_the_gateways_hosts(world: World, zone: tuple[Zone, str], front: str) -> None:
    """DNS rebinding: a page on a name rebound to the gateway's address drove the REST API and
    console (sign-in, the requester's approval page, docs) from the victim's browser and
    network, since only toolkit endpoints checked Host. Now they answer the gateway's own
    hosts and verified custom domains (whose approval links lead to the console), else 421."""
    key = world.keys["acme:admin"]

    async def get(host: str, path: str) -> int:
        async with httpx2.AsyncClient(timeout=30) as http:
            headers = {"Host": host, "Authorization": f"Bearer {key}"}
            return (await http.get(f"{front}{path}", headers=headers)).status_code

    paths = ("/console/login", "/api/v1/whoami", "/openapi.json", "/docs")
    async with world.client("acme:admin") as acme:
        await DomainClient(acme).add_domain("", DOMAIN)  # claimed, not proven: not ours yet
    for host in ("rebound.example.com", DOMAIN, ""):
        assert [await get(host, p) for p in paths] == [421] * len(paths), host
    own_host = front.removeprefix("http://")
    assert [await get(own_host, p) for p in paths] == [200] * len(paths)
    async with world.client("acme:admin") as acme:
        await DomainClient(acme).remove_domain("", DOMAIN)
    await _verified(world, zone[0])
    for _ in range(100):  # the front's copy of the table is at most a second old
        if await get(DOMAIN, "/console/login") == 200:
            break
        await asyncio.sleep(0.05)
    assert await get(DOMAIN, "/console/login") == 200


async def test_origins_and_removal(world: World, zone: tuple[Zone, str], front: str) -> None:
    await _verified(world, zone[0])
    key = world.keys["acme:member"]
    assert (await _post(front, DOMAIN, "/tools/mcp", key, Origin=f"https://{DOMAIN}")).status_code == 200
    assert (await _post(front, DOMAIN, "/tools/mcp", key, Origin="https://evil.example.com")).status_code == 403
    async with world.client("acme:admin") as acme:
        await DomainClient(acme).remove_domain("", DOMAIN)
    for _ in range(100):  # the front's copy of the table is at most a second old
        if (await _post(front, DOMAIN, "/tools/mcp", key)).status_code == 404:
            break
        await asyncio.sleep(0.05)
    assert (await _post(front, DOMAIN, "/tools/mcp", key)).status_code == 404


async def test_domain_changes_are_audited_and_rest_and_cli_work(
    world: World, zone: tuple[Zone, str], front: str
) -> None:
    headers = {"Authorization": f"Bearer {world.keys['acme:admin']}"}
    async with httpx2.AsyncClient(timeout=30, headers=headers) as http:
        added = await http.post(f"{front}/api/v1/domains", json={"domain": DOMAIN})
        assert added.status_code == 201, added.text
        body = added.json()
        not_yet = await http.post(f"{front}/api/v1/domains/{DOMAIN}/verify", json={})
        assert not_yet.status_code == 409 and not_yet.json()["detail"]["reason"] == "DOMAIN_NOT_PROVEN"
        zone[0].set(body["txt_record_name"], "TXT", body["txt_record_value"])
        verified = await http.post(f"{front}/api/v1/domains/{DOMAIN}/verify")
        assert verified.status_code == 200 and verified.json()["verified"] is True
        assert [d["domain"] for d in (await http.get(f"{front}/api/v1/domains")).json()] == [DOMAIN]
        assert (await http.delete(f"{front}/api/v1/domains/{DOMAIN}")).status_code == 200
        assert (await http.get(f"{front}/api/v1/domains")).json() == []
    env = os.environ | {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": world.keys["acme:admin"]}
    cli = [sys.executable, "-m", "monomcp_cli.main", "domains"]
    added_cli = await asyncio.to_thread(
        subprocess.run, [*cli, "add", "cli.acme.test"], env=env, capture_output=True, text=True, timeout=120
    )
    assert added_cli.returncode == 0 and "_monomcp-challenge.cli.acme.test" in added_cli.stdout, added_cli.stderr
    async with world.client("acme:admin") as admin:
        rows = (await admin.query_audit(page_size=100)).records
    actions = [(r.method, r.source) for r in rows if "Domain" in r.method]
    assert ("admin/AddDomain", "api") in actions and ("admin/VerifyDomain", "api") in actions
    assert ("admin/RemoveDomain", "api") in actions and ("admin/AddDomain", "cli") in actions


async def test_verifying_a_domain_is_audited_with_its_before_and_after(world: World, zone: tuple[Zone, str]) -> None:
    """Issue #13: the VerifyDomain row shows the domain going from unverified to verified."""
    await _verified(world, zone[0])
    records = (await world.operator.query_audit("acme", page_size=100)).records
    row = next(r for r in records if r.method == "admin/VerifyDomain" and r.status == "ok")
    change = json.loads(row.response_json)
    assert change["before"] == {"domain": DOMAIN, "verified_at": None}
    assert change["after"]["domain"] == DOMAIN and change["after"]["verified_at"]


async def test_an_unverified_claim_blocks_nobody(world: World, zone: tuple[Zone, str]) -> None:
    """Regression: an org could claim a domain it does not own and hold it unverified (three
    days, renewable by removing and re-adding), so the real owner could not even claim it."""
    records, _ = zone
    async with world.client("globex:admin") as squatter, world.client("acme:admin") as owner:
        squatted = await DomainClient(squatter).add_domain("", DOMAIN)
        assert not squatted.verified
        claimed = await DomainClient(owner).add_domain("", DOMAIN)  # not AlreadyExists
        assert claimed.verification_token != squatted.verification_token
        records.set(claimed.txt_record_name, "TXT", claimed.txt_record_value)
        assert (await DomainClient(owner).verify_domain("", DOMAIN, "dns")).verified
        # The first to verify gets it; the other pending claims are dropped.
        assert await DomainClient(squatter).list_domains() == []
        with pytest.raises(errors.NotFound):
            await DomainClient(squatter).verify_domain("", DOMAIN)
        with pytest.raises(errors.AlreadyExists):
            await DomainClient(squatter).add_domain("", DOMAIN)
        assert [(d.domain, d.verified) for d in await DomainClient(owner).list_domains()] == [(DOMAIN, True)]


async def test_two_pending_claims_and_only_the_first_proof_wins(world: World, zone: tuple[Zone, str]) -> None:
    records, _ = zone
    async with world.client("globex:admin") as globex, world.client("acme:admin") as acme:
        first = await DomainClient(acme).add_domain("", DOMAIN)
        second = await DomainClient(globex).add_domain("", DOMAIN)
        assert await DomainClient(acme).add_domain("", DOMAIN) == first  # re-adding keeps the same claim
        records.set(first.txt_record_name, "TXT", first.txt_record_value, second.txt_record_value)
        results = await asyncio.gather(
            DomainClient(acme).verify_domain("", DOMAIN, "dns"),
            DomainClient(globex).verify_domain("", DOMAIN, "dns"),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1 and winners[0].verified, results
        assert len(losers) == 1 and isinstance(losers[0], (errors.AlreadyExists, errors.NotFound)), results
        owners = [c for c in (acme, globex) if await DomainClient(c).list_domains()]
        assert len(owners) == 1


async def test_pending_claims_per_org_are_bounded(world: World, zone: tuple[Zone, str]) -> None:
    """Regression: claims cost nothing, so one org could add unproven claims without end (a row,
    a token and a lookup per verify attempt each, in a table every org shares)."""
    records, _ = zone
    async with world.client("acme:admin") as acme, world.client("globex:admin") as globex:
        domains = DomainClient(acme)
        proven = await domains.add_domain("", DOMAIN)
        records.set(proven.txt_record_name, "TXT", proven.txt_record_value)
        assert (await domains.verify_domain("", DOMAIN, "dns")).verified  # verified ones do not count
        for i in range(store.MAX_PENDING_PER_ORG):
            await domains.add_domain("", f"d{i}.acme.test")
        with pytest.raises(errors.FailedPrecondition) as refused:
            await domains.add_domain("", "one-more.acme.test")
        assert refused.value.reason == "TOO_MANY_PENDING_DOMAINS"
        assert await domains.add_domain("", "d0.acme.test")  # re-adding an existing claim still answers
        assert (await DomainClient(globex).add_domain("", "one-more.acme.test")).domain  # other orgs unaffected
        await domains.remove_domain("", "d0.acme.test")
        assert (await domains.add_domain("", "one-more.acme.test")).domain == "one-more.acme.test"
        assert len(await domains.list_domains()) == store.MAX_PENDING_PER_ORG + 1
