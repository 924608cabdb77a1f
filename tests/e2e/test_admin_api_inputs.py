"""Bad input to the REST API and the admin RPCs gets a clear 4xx / INVALID_ARGUMENT, never
a 500 / INTERNAL: integers beyond what the fields hold, malformed page tokens, TTLs that
overflow a date, NUL and other control characters (Postgres refuses NUL in text)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from policy_service import errors
from policy_service.client import PolicyClient
from tests.conftest import World

BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/v1/approvals?page_size=2147483648", {}),
    ("GET", "/api/v1/approvals?page_size=0", {}),
    ("GET", "/api/v1/approvals?page_token=2024-01-01%7Cx", {}),
    ("GET", "/api/v1/approvals?page_token=%00", {}),
    ("GET", "/api/v1/approvals?status=bogus", {}),
    ("GET", "/api/v1/approvals/%00", {}),
    ("GET", "/api/v1/approvals/" + "x" * 500, {}),
    ("POST", "/api/v1/approvals/%00/approve", {}),
    ("POST", "/api/v1/approvals/abc/deny", {"json": {"reason": "no\x00"}}),
    ("GET", "/api/v1/audit?page_size=2147483648", {}),
    ("GET", "/api/v1/audit?page_size=-5", {}),
    ("GET", "/api/v1/audit?page_token=99999999999999999999999", {}),
    ("GET", "/api/v1/audit?page_token=-1", {}),
    ("GET", "/api/v1/audit?tool=%00", {}),
    ("GET", "/api/v1/audit?call_id=%1b%5b31m", {}),
    ("GET", "/api/v1/audit?since=9999-12-31T23:59:59-05:00", {}),
    ("GET", "/api/v1/audit?until=0001-01-01T00:00:00%2B05:00", {}),
    ("GET", "/api/v1/audit/export?tool=%00", {}),
    ("POST", "/api/v1/keys", {"json": {"name": "a", "ttl_seconds": 1e12}}),
    ("POST", "/api/v1/keys", {"json": {"name": "a", "ttl_seconds": 10**30}}),
    ("POST", "/api/v1/keys", {"json": {"name": "a", "ttl_seconds": -1}}),
    ("POST", "/api/v1/keys", {"json": {"name": "a\x00b"}}),
    ("POST", "/api/v1/keys", {"json": {"name": "line\nbreak"}}),
    ("POST", "/api/v1/keys", {"json": {"name": "a", "role": "x\x00"}}),
    ("DELETE", "/api/v1/keys/%00", {}),
    ("PUT", "/api/v1/permissions", {"json": {"toolkit": "acme/tools", "tool": "e\x00", "permission": "blocked"}}),
    (
        "PUT",
        "/api/v1/permissions",
        {"json": {"toolkit": "acme/tools", "tool": "echo", "permission": "blocked", "role": "\x00"}},
    ),
    ("GET", "/api/v1/toolkits/%00/x/tools", {}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), BAD_REQUESTS, ids=[f"{m} {u[:60]}" for m, u, _ in BAD_REQUESTS])
async def test_bad_rest_input_is_a_clear_client_error(
    world: World, front: str, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    admin = {"Authorization": f"Bearer {world.keys['acme:admin']}"}
    async with httpx.AsyncClient(base_url=front) as http:
        response = await http.request(method, url, headers=admin, **kwargs)
        assert response.status_code in (400, 422), response.text[:300]
        assert response.json()["detail"]  # says what is wrong
        assert (await http.get("/api/v1/whoami", headers=admin)).status_code == 200  # still serving


async def test_console_forms_bound_their_inputs(world: World, front: str) -> None:
    from tests.e2e.test_console_session import sign_in

    async with httpx.AsyncClient(base_url=front) as http:
        await sign_in(http, world.keys["acme:admin"])
        keys = await http.get("/console/keys")
        csrf = keys.text.split('name="csrf" value="')[1].split('"')[0]
        for form in ({"name": "k", "ttl_days": "1000000000000"}, {"name": "k\x00"}):
            created = await http.post("/console/keys", data={"csrf": csrf, **form}, headers={"Origin": front})
            assert created.status_code == 422, created.text[:300]
        assert (await http.get("/console/audit?page_token=99999999999999999999999")).status_code == 400
        assert (await http.get("/console/audit?tool=%00")).status_code == 422


async def test_admin_rpcs_answer_invalid_argument(world: World) -> None:
    async with PolicyClient(world.policy_addr, world.keys["acme:admin"]) as admin:
        calls = [
            admin.create_api_key("", "a", "member", 10**12),
            admin.create_api_key("", "a\x00b", "member", 0),
            admin.create_api_key("", "a", "mem\x00ber", 0),
            admin.revoke_api_key("", "\x00"),
            admin.list_approvals("", "", 10, "2024-01-01|x"),
            admin.list_approvals("", "", 10, "0001-01-01T00:00:00+05:00|x"),
            admin.get_approval("\x00"),
            admin.decide_approval("\x00", True),
            admin.query_audit(page_token="99999999999999999999999"),
            admin.query_audit(tool="\x00"),
        ]
        for call in calls:
            with pytest.raises(errors.InvalidArgument):
                await call
        assert (await admin.whoami()).org_slug == "acme"
