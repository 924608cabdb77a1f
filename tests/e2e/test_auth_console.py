"""People sign in to the console with email, password and org; the browser keeps only an
opaque session, CSRF on the form still holds, and disabling the account ends the session."""

from __future__ import annotations

import re

import httpx

from tests.conftest import World

LOGIN_TOKEN = re.compile(r'name="csrf" value="([^"]*)"')
PASSWORD = "console password 123"


async def _sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await http.get("/console/login")
    found = LOGIN_TOKEN.search(form.text)
    assert found is not None and 'name="email"' in form.text
    data = {"email": email, "password": password, "org": "acme", "csrf": found.group(1)}
    return await http.post("/console/login", data=data, headers={"Origin": str(http.base_url).rstrip("/")})


async def test_a_person_signs_in_with_a_password_and_is_refused_once_disabled(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "ada@acme.example", "Ada", "admin", PASSWORD)
    async with httpx.AsyncClient(base_url=front) as http:
        signed_in = await _sign_in(http, "ada@acme.example")
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/approvals"
        cookie = str(http.cookies.get("mmcp_console"))
        assert cookie.startswith("mmcs_") and PASSWORD not in cookie
        assert (await http.get("/api/v1/whoami")).json()["display"] == "ada@acme.example"
        page = await http.get("/console/approvals")
        assert page.status_code == 200 and "content-security-policy" in page.headers
        async with world.client("acme:admin") as admin:
            await admin.set_person_disabled("", "ada@acme.example", True)
        assert (await http.get("/api/v1/whoami")).status_code == 401


async def test_a_wrong_password_or_a_member_gets_the_form_again(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "dev@acme.example", "Dev", "member", PASSWORD)
    async with httpx.AsyncClient(base_url=front) as http:
        wrong = await _sign_in(http, "dev@acme.example", "not the password")
        assert wrong.status_code == 303 and "Wrong+email" in wrong.headers["location"]
        member = await _sign_in(http, "dev@acme.example")
        assert member.status_code == 303 and "admin" in member.headers["location"]
        assert http.cookies.get("mmcp_console") is None
    # both attempts are the console's, in the audit log and its source filter (they said "api")
    page = await world.operator.query_audit("acme", source="console", page_size=50)
    tried = [(r.method, r.status, r.actor_display) for r in page.records]
    assert ("auth/console", "failed", "dev@acme.example") in tried and (
        "auth/console",
        "ok",
        "dev@acme.example",
    ) in tried
    api_rows = (await world.operator.query_audit("acme", source="api", page_size=50)).records
    assert not any(r.method == "auth/console" for r in api_rows)


async def test_the_password_form_still_needs_its_csrf_token(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "ada@acme.example", "Ada", "admin", PASSWORD)
    async with httpx.AsyncClient(base_url=front) as http:
        data = {"email": "ada@acme.example", "password": PASSWORD, "org": "acme", "csrf": "guess"}
        forged = await http.post("/console/login", data=data, headers={"Origin": front})
        assert forged.status_code == 403 and http.cookies.get("mmcp_console") is None
