"""The admin REST API and console over real HTTP: authorization, CSRF, escaping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import World, mcp_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _pending(world: World, front: str, args: dict[str, Any] | None = None) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("transfer", args or {"amount": 1, "to": "eve"})
    return str(result.meta["monomcp/approval"]["id"])  # type: ignore[index]


async def test_rest_approvals_flow_and_authorization(world: World, front: str) -> None:
    approval_id = await _pending(world, front)
    async with httpx.AsyncClient(base_url=front) as http:
        listed = await http.get("/api/v1/approvals?status=pending", headers=bearer(world.keys["acme:admin"]))
        assert [a["id"] for a in listed.json()["approvals"]] == [approval_id]
        assert (await http.get("/api/v1/approvals")).status_code == 401
        member = await http.post(f"/api/v1/approvals/{approval_id}/approve", headers=bearer(world.keys["acme:member"]))
        assert member.status_code == 403
        other = await http.post(f"/api/v1/approvals/{approval_id}/approve", headers=bearer(world.keys["globex:admin"]))
        assert other.status_code == 404
        bad = await http.post(
            f"/api/v1/approvals/{approval_id}/deny", headers=bearer(world.keys["acme:admin"]), json={}
        )
        assert bad.status_code == 422
        ok = await http.post(f"/api/v1/approvals/{approval_id}/approve", headers=bearer(world.keys["acme:admin"]))
        assert ok.status_code == 200 and ok.json()["status"] == "approved"
        # An empty queue is an empty list (it was `{}`: `jq '.approvals[]'` then failed).
        empty = await http.get("/api/v1/approvals?status=pending", headers=bearer(world.keys["acme:admin"]))
        assert empty.json() == {"approvals": []}
        again = await http.post(f"/api/v1/approvals/{approval_id}/approve", headers=bearer(world.keys["acme:admin"]))
        assert again.status_code == 409
        audit = await http.get("/api/v1/audit?tool=transfer", headers=bearer(world.keys["acme:admin"]))
        assert audit.status_code == 200 and audit.json()["records"][0]["status"] == "pending_approval"
        export = await http.get("/api/v1/audit/export", headers=bearer(world.keys["acme:admin"]))
        assert export.status_code == 200 and len(export.text.strip().splitlines()) >= 1
        openapi = await http.get("/openapi.json")
        assert "/api/v1/approvals/{approval_id}/approve" in openapi.json()["paths"]


async def test_rest_keys_and_permissions(world: World, front: str) -> None:
    admin = bearer(world.keys["acme:admin"])
    async with httpx.AsyncClient(base_url=front) as http:
        created = await http.post("/api/v1/keys", headers=admin, json={"name": "ci", "role": "member"})
        assert created.status_code == 201 and created.json()["secret"].startswith("mmcp_")
        key_id = created.json()["key"]["id"]
        assert key_id in [k["id"] for k in (await http.get("/api/v1/keys", headers=admin)).json()]
        assert "secret" not in str((await http.get("/api/v1/keys", headers=admin)).json())
        assert (await http.delete(f"/api/v1/keys/{key_id}", headers=admin)).json()["revoked_at"]
        assert (
            await http.post("/api/v1/keys", headers=bearer(world.keys["acme:member"]), json={"name": "x"})
        ).status_code == 403
        rule = await http.put(
            "/api/v1/permissions",
            headers=admin,
            json={"toolkit": "acme/tools", "tool": "echo", "permission": "blocked", "role": "member"},
        )
        assert rule.status_code == 200
        assert (await http.get("/api/v1/permissions", headers=admin)).json()[0]["tool"] == "echo"
        invalid = await http.put(
            "/api/v1/permissions", headers=admin, json={"toolkit": "acme/tools", "tool": "echo", "permission": "maybe"}
        )
        assert invalid.status_code == 422
        tools = await http.get("/api/v1/toolkits/acme/tools/tools", headers=admin)
        assert "transfer" in [t["name"] for t in tools.json()]


async def _sign_in(http: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await http.get("/console/login")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    return await http.post("/console/login", data={"credential": key, "next": "/console/approvals", "csrf": csrf})


async def test_console_sign_in_cookie_and_csrf(world: World, front: str) -> None:
    approval_id = await _pending(world, front)
    async with httpx.AsyncClient(base_url=front) as http:
        assert (await http.get("/console/approvals")).status_code == 303
        refused = await _sign_in(http, world.keys["acme:member"])
        assert "error" in refused.headers["location"]
        signed = await _sign_in(http, world.keys["acme:admin"])
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = await http.get(f"/console/approvals/{approval_id}")
        assert page.status_code == 200 and "transfer" in page.text
        no_csrf = await http.post(f"/console/approvals/{approval_id}/decide", data={"action": "approve"})
        assert no_csrf.status_code == 403
        api_no_csrf = await http.post(f"/api/v1/approvals/{approval_id}/approve")
        assert api_no_csrf.status_code == 403
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        decided = await http.post(f"/console/approvals/{approval_id}/decide", data={"action": "approve", "csrf": csrf})
        assert decided.status_code == 303
        assert "approved" in (await http.get(f"/console/approvals/{approval_id}")).text


@pytest.mark.parametrize("path", ["/console/approvals", "/console/audit"])
async def test_console_escapes_payloads(world: World, front: str, path: str) -> None:
    evil = "<script>alert(1)</script>"
    approval_id = await _pending(world, front, {"amount": 1, "to": evil})
    async with httpx.AsyncClient(base_url=front) as http:
        await _sign_in(http, world.keys["acme:admin"])
        for url in (path, f"/console/approvals/{approval_id}"):
            html = (await http.get(url)).text
            assert evil not in html
        audit = (await http.get("/console/audit?tool=transfer")).text
        call_id = audit.split('href="/console/audit/')[1].split('"')[0]
        detail = (await http.get(f"/console/audit/{call_id}")).text
        assert evil not in detail and "&lt;script&gt;" in detail


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


async def test_console_permissions_matrix_edits_overrides(world: World, front: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        await _sign_in(http, world.keys["acme:admin"])
        matrix = await http.get("/console/permissions?toolkit=acme/tools")
        assert matrix.status_code == 200 and "Role: member" in matrix.text and "transfer" in matrix.text
        assert matrix.text.count("Save all changes") == 1  # one Save for the whole matrix
        form = {"toolkit": "acme/tools", "p:member:echo": "blocked", "p::echo": "inherit"}
        assert (await http.post("/console/permissions", data=form)).status_code == 403  # no CSRF token
        saved = await http.post("/console/permissions", data={**form, "csrf": _csrf(matrix.text)})
        assert saved.status_code == 303 and "saved=1" in saved.headers["location"]  # only the changed cell
        shown = await http.get(saved.headers["location"])
        assert "Saved: 1 change." in shown.text and "→ blocked" in shown.text and "→ always allow" in shown.text
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        assert "echo" not in {t.name for t in (await client.list_tools()).tools}
    async with httpx.AsyncClient(base_url=front) as http:
        await _sign_in(http, world.keys["acme:admin"])
        matrix = await http.get("/console/permissions?toolkit=acme/tools")
        await http.post("/console/permissions", data={**form, "p:member:echo": "inherit", "csrf": _csrf(matrix.text)})
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        assert "echo" in {t.name for t in (await client.list_tools()).tools}


async def test_console_keys_create_shows_secret_once_and_revokes(world: World, front: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        await _sign_in(http, world.keys["acme:admin"])
        keys = await http.get("/console/keys")
        created = await http.post(
            "/console/keys",
            data={"name": "from console", "role": "member", "ttl_days": "30", "csrf": _csrf(keys.text)},
        )
        assert "<option selected>member</option>" in keys.text and 'name="ttl_days"' in keys.text
        assert created.status_code == 200, created.text[:500]
        secret = created.text.split("<pre>")[1].split("</pre>")[0]
        assert secret.startswith("mmcp_")
        listing = await http.get("/console/keys")
        assert "from console" in listing.text and secret not in listing.text
        row = listing.text[listing.text.index("from console") :]
        row = row[: row.index("</tr>")]
        # Created and (30 days on) expiry are shown as times; never used yet.
        assert row.count("<time datetime=") == 2 and "in 29 d" in row and '"Last used">never<' in row
        key_id = row.split('href="/console/keys/')[1].split("/revoke")[0]
        confirm = await http.get(f"/console/keys/{key_id}/revoke")  # revoking asks first
        assert "cannot be undone" in confirm.text and "from console" in confirm.text
        await http.post(f"/console/keys/{key_id}/revoke", data={"csrf": _csrf(confirm.text)})
        revoked = (await http.get("/console/keys")).text
        revoked_row = revoked[revoked.index("from console") :]
        assert '"Actions">revoked<' in revoked_row[: revoked_row.index("</tr>")]
        missing = await http.get("/console/approvals/0123456789abcdef", headers={"Accept": "text/html"})
        assert missing.status_code == 404 and "<h1>Error 404</h1>" in missing.text  # a page, not JSON
        # An unknown console path is the same page (it was Starlette's JSON), and a signed-in
        # person is not offered to sign in.
        unknown = await http.get("/console/no-such-page", headers={"Accept": "text/html"})
        assert unknown.status_code == 404 and "<h1>Error 404</h1>" in unknown.text
        assert 'href="/console/login"' not in unknown.text
        api = await http.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
        assert api.status_code == 404 and api.json() == {"detail": "Not Found"}  # the API stays JSON
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{front}/acme/tools/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401


async def test_rest_toolkits_list_and_sync_from_backend(world: World, front: str) -> None:
    admin = bearer(world.keys["acme:admin"])
    async with httpx.AsyncClient(base_url=front) as http:
        me = await http.get("/api/v1/whoami", headers=admin)
        assert me.json()["org_slug"] == "acme" and me.json()["role"] == "admin"
        listed = await http.get("/api/v1/toolkits", headers=bearer(world.keys["globex:admin"]))
        assert [(t["org_slug"], t["slug"]) for t in listed.json()] == [("acme", "shared")]  # public only
        synced = await http.post("/api/v1/toolkits/acme/tools/sync?prune=true", headers=admin)
        assert synced.status_code == 200 and synced.json()["updated"] == 9
        foreign = await http.post("/api/v1/toolkits/acme/tools/sync", headers=bearer(world.keys["globex:admin"]))
        assert foreign.status_code == 404
        member = await http.post("/api/v1/toolkits/acme/tools/sync", headers=bearer(world.keys["acme:member"]))
        assert member.status_code == 403
