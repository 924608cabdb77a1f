"""Console sessions over real HTTP against the real policy service: the cookie is an
opaque server-side session, sign-out and key revocation end it, sign-in resists CSRF,
and every console and API response carries the security headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from policy_service import errors
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.storage.models import ConsoleSession
from tests.conftest import OPERATOR, World

LOGIN_TOKEN = re.compile(r'name="csrf" value="([^"]*)"')


async def sign_in(http: httpx.AsyncClient, key: str, origin: str | None = None) -> httpx.Response:
    """Fill in and post the sign-in form the way a browser does."""
    form = await http.get("/console/login")
    found = LOGIN_TOKEN.search(form.text)
    data = {"credential": key, "next": "/console/approvals"} | ({"csrf": found.group(1)} if found else {})
    headers = {"Origin": origin or str(http.base_url).rstrip("/")}
    return await http.post("/console/login", data=data, headers=headers)


def session_cookie(http: httpx.AsyncClient) -> str:
    return str(http.cookies.get("mmcp_console", domain="", path="/") or http.cookies.get("mmcp_console"))


async def test_cookie_is_an_opaque_session_not_the_key(world: World, front: str) -> None:
    key = world.keys["acme:admin"]
    async with httpx.AsyncClient(base_url=front) as http:
        assert (await sign_in(http, key)).status_code == 303
        cookie = session_cookie(http)
    assert cookie.startswith("mmcs_")
    assert key not in cookie and key[5:21] not in cookie  # neither the key nor its public id
    async with PolicyClient(world.policy_addr, cookie) as client:
        assert (await client.whoami()).org_slug == "acme"  # the admin API accepts it
        with pytest.raises(errors.Unauthenticated):  # tool calls do not
            await client.list_tools(cookie, "acme", "tools")


async def test_replayed_cookie_after_sign_out_is_refused(world: World, front: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        await sign_in(http, world.keys["acme:admin"])
        cookie = session_cookie(http)
        assert (await http.get("/api/v1/approvals")).status_code == 200
        out = await http.post("/console/logout", headers={"Origin": front})
        assert out.status_code == 303
    async with httpx.AsyncClient(base_url=front, cookies={"mmcp_console": cookie}) as replay:
        assert (await replay.get("/api/v1/approvals")).status_code == 401
        page = await replay.get("/console/approvals")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/login")
    with pytest.raises(errors.Unauthenticated):
        async with PolicyClient(world.policy_addr, cookie) as client:
            await client.whoami()


async def test_revoking_the_key_ends_its_sessions(world: World, front: str) -> None:
    issued = await world.operator.create_api_key("acme", "temporary admin", "admin")
    async with httpx.AsyncClient(base_url=front) as http:
        await sign_in(http, issued.secret)
        assert (await http.get("/api/v1/whoami")).json()["display"] == "temporary admin"
        await world.operator.revoke_api_key("acme", issued.key.id)
        assert (await http.get("/api/v1/whoami")).status_code == 401
        assert (await http.get("/console/keys")).headers["location"].startswith("/console/login")


async def test_sign_in_refuses_cross_site_posts(world: World, front: str) -> None:
    key = world.keys["acme:admin"]
    async with httpx.AsyncClient(base_url=front) as attacker:  # no sign-in form loaded: no token
        forged = await attacker.post("/console/login", data={"credential": key}, headers={"Origin": front})
        assert forged.status_code == 403 and "mmcp_console=" not in forged.headers.get("set-cookie", "")
    async with httpx.AsyncClient(base_url=front) as http:
        cross = await sign_in(http, key, origin="https://evil.example")
        assert cross.status_code == 403 and "mmcp_console=" not in cross.headers.get("set-cookie", "")
        fetched = await http.post(
            "/console/login",
            data={"credential": key, "csrf": "guess"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert fetched.status_code == 403


async def test_session_cannot_open_another_or_be_opened_by_a_member(world: World, front: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        await sign_in(http, world.keys["acme:admin"])
        cookie = session_cookie(http)
    async with PolicyClient(world.policy_addr, cookie) as client:
        with pytest.raises(errors.PermissionDenied):
            await client.create_console_session()
    async with PolicyClient(world.policy_addr, world.keys["acme:member"]) as client:
        with pytest.raises(errors.PermissionDenied):
            await client.create_console_session()
    async with PolicyClient(world.policy_addr, OPERATOR) as client:
        session = await client.create_console_session(ttl_seconds=10**9)
    lifetime = session.expires_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(hours=11) < lifetime <= timedelta(hours=12)  # capped, whatever was asked
    async with PolicyClient(world.policy_addr, session.token) as client:
        assert (await client.whoami()).kind == "operator"


async def test_expired_session_is_refused(world: World, front: str, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        await sign_in(http, world.keys["acme:admin"])
        assert (await http.get("/api/v1/whoami")).status_code == 200
        engine = create_async_engine(settings.database_url)
        async with engine.begin() as conn:  # twelve hours pass
            await conn.execute(update(ConsoleSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await engine.dispose()
        refused = await http.get("/api/v1/whoami")
        assert refused.status_code == 401 and refused.json()["detail"]["reason"] == "SESSION_EXPIRED"


SECRET_PAGES = ["/console/login", "/console/approvals", "/console/keys", "/console/audit", "/api/v1/keys"]


@pytest.mark.parametrize("path", SECRET_PAGES)
async def test_security_headers_on_console_and_api(world: World, front: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http, httpx.AsyncClient(base_url=front) as anonymous:
        await sign_in(http, world.keys["acme:admin"])
        response = await http.get(path)
        unauthenticated = await anonymous.get(path)
    assert response.status_code == 200
    for answer in (response, unauthenticated):
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] in ("no-referrer", "same-origin")
        assert answer.headers["cache-control"] == "no-store"
    if path.startswith("/console"):
        assert "<style" not in response.text and not re.search(r"<script(?![^>]*\bsrc=)", response.text)


async def test_api_docs_page_gets_its_own_strict_policy(front: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        docs = await http.get("/docs")
    csp = docs.headers["content-security-policy"]
    assert docs.status_code == 200 and "SwaggerUIBundle" in docs.text
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'sha256-" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]  # scripts only by hash
    assert "cdn." not in docs.text and "https://" not in csp  # works offline: everything from this server
    async with httpx.AsyncClient(base_url=front) as http:
        for asset in re.findall(r'(?:src|href)="(/console/static/swagger/[^"]+)"', docs.text):
            assert (await http.get(asset)).status_code == 200, asset
