"""People sign in at /api/v1/auth/login, refresh with rotation and reuse detection, sign
out, and the JWTs they get work where keys work (REST, gRPC admin, MCP endpoints)."""

from __future__ import annotations

from typing import Any

import httpx2
import jwt
import pytest
from sqlalchemy import select

from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.errors import Unauthenticated
from policy_service.storage.database import create_engine, session_factory
from policy_service.storage.models import AuditRequestLog, RefreshToken, User
from tests.conftest import JWT_SECRET, World, mcp_client

PASSWORD = "correct horse battery staple"


async def _person(world: World, email: str = "ada@acme.example", role: str = "admin") -> str:
    async with world.client("acme:admin") as admin:
        created = await admin.create_person("", email, "Ada Lovelace", role, PASSWORD)
    return created.person.user_id


async def _login(http: httpx2.AsyncClient, front: str, email: str = "ada@acme.example", **extra: Any) -> Any:
    body = {"email": email, "password": PASSWORD, "org": "acme"} | extra
    return await http.post(f"{front}/api/v1/auth/login", json=body)


async def test_login_issues_a_jwt_that_works_on_rest_grpc_and_mcp(world: World, front: str) -> None:
    user_id = await _person(world)
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await _login(http, front)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer" and body["refresh_token"].startswith("mmcr_")
        claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
        assert {"sub", "org", "role", "iat", "exp", "iss", "aud", "jti"} <= set(claims)
        assert (claims["sub"], claims["org"], claims["role"]) == (user_id, "acme", "admin")
        assert 0 < claims["exp"] - claims["iat"] <= 900
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        whoami = await http.get(f"{front}/api/v1/whoami", headers=bearer)
        assert whoami.json()["display"] == "ada@acme.example"
    async with PolicyClient(world.policy_addr, body["access_token"]) as client:
        assert (await client.whoami()).kind == "user"
    async with mcp_client(f"{front}/acme/tools/mcp", body["access_token"]) as mcp:
        assert (await mcp.list_tools()).tools


async def test_wrong_password_unknown_email_and_wrong_org_get_one_answer_and_are_audited(
    world: World, front: str, settings: Settings
) -> None:
    await _person(world)
    async with httpx2.AsyncClient(timeout=30) as http:
        answers = [
            await _login(http, front, password="wrong password!!"),
            await _login(http, front, email="nobody@acme.example"),
            await _login(http, front, org="globex"),
        ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.json()["detail"]["message"] for a in answers}) == 1
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as db:
        rows = (await db.execute(select(AuditRequestLog).where(AuditRequestLog.method == "auth/login"))).scalars()
        failed = [r for r in rows if r.status == "failed"]
    await engine.dispose()
    assert len(failed) == 3 and all(r.source == "api" for r in failed)
    assert all(PASSWORD not in r.request_payload and "wrong password" not in r.request_payload for r in failed)


async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_sign_in(world: World, front: str) -> None:
    await _person(world)
    async with httpx2.AsyncClient(timeout=30) as http:
        first = (await _login(http, front)).json()
        url = f"{front}/api/v1/auth/refresh"
        second = await http.post(url, json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"]
        reuse = await http.post(url, json={"refresh_token": first["refresh_token"]})
        assert reuse.status_code == 401 and reuse.json()["detail"]["reason"] == "REFRESH_REUSED"
        # the thief's copy and the person's newest token are both dead now, and so are access tokens
        assert (await http.post(url, json={"refresh_token": rotated["refresh_token"]})).status_code == 401
        bearer = {"Authorization": f"Bearer {rotated['access_token']}"}
        assert (await http.get(f"{front}/api/v1/whoami", headers=bearer)).status_code == 401


async def test_logout_revokes_the_access_and_refresh_tokens(world: World, front: str) -> None:
    await _person(world)
    async with httpx2.AsyncClient(timeout=30) as http:
        tokens = (await _login(http, front)).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.get(f"{front}/api/v1/whoami", headers=bearer)).status_code == 200
        out = await http.post(f"{front}/api/v1/auth/logout", json={}, headers=bearer)
        assert out.status_code == 204
        assert (await http.get(f"{front}/api/v1/whoami", headers=bearer)).status_code == 401
        again = await http.post(f"{front}/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401


async def test_a_disabled_account_is_refused_everywhere(world: World, front: str) -> None:
    await _person(world, "bob@acme.example", "member")
    async with httpx2.AsyncClient(timeout=30) as http:
        tokens = (await _login(http, front, email="bob@acme.example")).json()
        async with world.client("acme:admin") as admin:
            key = await admin.create_api_key("", "bob's key", "member", owner="bob@acme.example")
            assert key.key.owner_email == "bob@acme.example"
            await admin.set_person_disabled("", "bob@acme.example", True)
        for credential in (tokens["access_token"], key.secret):
            with pytest.raises(Unauthenticated):
                async with PolicyClient(world.policy_addr, credential) as client:
                    await client.whoami()
        assert (await _login(http, front, email="bob@acme.example")).status_code == 401
        refresh = await http.post(f"{front}/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401


async def test_failed_sign_ins_are_limited_per_account(world: World, front: str) -> None:
    await _person(world)
    async with httpx2.AsyncClient(timeout=30) as http:
        for _ in range(10):
            assert (await _login(http, front, password="not the password")).status_code == 401
        limited = await _login(http, front)  # even the right password waits now
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


async def test_jwt_forms_that_are_refused(world: World) -> None:
    user_id = await _person(world)
    now = 1_900_000_000
    forged = [
        jwt.encode(
            {"sub": user_id, "org": "acme", "exp": now}, "another secret that is long enough " * 2, algorithm="HS256"
        ),
        jwt.encode({"sub": user_id, "org": "acme", "exp": 1}, JWT_SECRET, algorithm="HS256"),
        jwt.encode({"sub": user_id, "org": "acme", "exp": now}, JWT_SECRET, algorithm="HS512"),
        jwt.encode({"sub": user_id, "org": "acme", "exp": now, "sid": "f" * 32}, JWT_SECRET, algorithm="HS256"),
    ]
    for token in forged:
        with pytest.raises(Unauthenticated):
            async with PolicyClient(world.policy_addr, token) as client:
                await client.whoami()


async def test_refresh_tokens_are_stored_hashed(world: World, front: str, settings: Settings) -> None:
    await _person(world)
    async with httpx2.AsyncClient(timeout=30) as http:
        tokens = (await _login(http, front)).json()
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as db:
        stored = [r.token_hash for r in (await db.execute(select(RefreshToken))).scalars()]
        user = (await db.execute(select(User).where(User.email == "ada@acme.example"))).scalar_one()
    await engine.dispose()
    assert tokens["refresh_token"] not in stored and stored
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
