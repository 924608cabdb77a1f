"""REST for people and their sign-in: /api/v1/auth/{login,refresh,logout}, /api/v1/people,
/api/v1/me/password, and API keys at /api/v1/api-keys (with /api/v1/keys kept as a
deprecated alias). The front stays stateless: every call is one policy RPC."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mcp_front.admin.inputs import Ident, Name
from mcp_front.admin.rest import AdminApi, KeyBody, to_json
from mcp_front.edge.request import bearer_of
from policy_service import errors
from policy_service.client import PolicyUnavailable

Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^\s@]+@[^\s@]+$")]
Password = Annotated[str, Field(max_length=256)]
RefreshToken = Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z0-9_]*$")]
_RETRY = re.compile(r"try again in (\d+) s")
_SIGN_IN_STATUS = {
    errors.Unauthenticated: 401,
    errors.InvalidArgument: 400,
    errors.PermissionDenied: 403,
    errors.RateLimited: 429,
    PolicyUnavailable: 503,
}


class LoginBody(BaseModel):
    email: Email
    password: Password
    org: Ident


class RefreshBody(BaseModel):
    refresh_token: RefreshToken


class LogoutBody(BaseModel):
    refresh_token: RefreshToken = ""


class PersonBody(BaseModel):
    email: Email
    display_name: Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    role: Ident = "member"
    password: Password = Field("", description="empty = generate one (returned once)")


class DisableBody(BaseModel):
    disabled: bool = True


class ResetBody(BaseModel):
    new_password: Password = Field("", description="empty = generate one (returned once)")


class ChangeBody(BaseModel):
    current_password: Password
    new_password: Password


class ApiKeyBody(KeyBody):
    owner: Annotated[str, Field(max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$")] = Field(
        "", description="email or user id of the person the key belongs to (default: you)"
    )


def _client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def _anonymous(api: AdminApi, request: Request, credential: str, fn: Any) -> Any:
    """A sign-in RPC (no admin credential); refusals keep their status and Retry-After."""
    async with api.client(request, credential, "api") as client:
        try:
            return await fn(client)
        except errors.PolicyError as exc:
            status = next((code for kind, code in _SIGN_IN_STATUS.items() if isinstance(exc, kind)), 500)
            headers = {}
            if status == 429 and (m := _RETRY.search(exc.message)):
                headers["Retry-After"] = m.group(1)
            raise HTTPException(status, {"reason": exc.reason, "message": exc.message}, headers or None) from None


def _tokens(response: Any) -> dict[str, Any]:
    body = to_json(response)
    body.setdefault("token_type", "Bearer")
    body["expires_in"] = int(body.get("expires_in", 0))  # a number, as in OAuth token responses
    return body


def build_people_router(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/api/v1")
    _auth_routes(r, api)
    _people_routes(r, api)
    _key_routes(r, api)
    return r


def _auth_routes(r: APIRouter, api: AdminApi) -> None:
    @r.post("/auth/login", tags=["auth"])
    async def login(request: Request, body: LoginBody) -> JSONResponse:
        """Email, password and org → a short-lived JWT access token and a rotating refresh token."""
        agent = request.headers.get("user-agent", "")[:512]
        response = await _anonymous(
            api,
            request,
            "",
            lambda c: c.login(body.email, body.password, body.org, _client_address(request), agent),
        )
        return JSONResponse(_tokens(response), headers={"Cache-Control": "no-store"})

    @r.post("/auth/refresh", tags=["auth"])
    async def refresh(request: Request, body: RefreshBody) -> JSONResponse:
        """A refresh token works once; presenting a used one signs that sign-in out everywhere."""
        agent = request.headers.get("user-agent", "")[:512]
        response = await _anonymous(
            api, request, "", lambda c: c.refresh(body.refresh_token, _client_address(request), agent)
        )
        return JSONResponse(_tokens(response), headers={"Cache-Control": "no-store"})

    @r.post("/auth/logout", status_code=204, tags=["auth"])
    async def logout(request: Request, body: LogoutBody) -> None:
        """Revokes the sign-in of the refresh token and/or the bearer access token."""
        bearer = bearer_of(request.headers.get("authorization", ""))
        await _anonymous(api, request, bearer, lambda c: c.logout(body.refresh_token))


def _people_routes(r: APIRouter, api: AdminApi) -> None:
    @r.get("/people", tags=["people"])
    async def list_people(request: Request) -> list[dict[str, Any]]:
        return [to_json(p) for p in await api.call(request, lambda c: c.list_people())]

    @r.post("/people", status_code=201, tags=["people"])
    async def create_person(request: Request, body: PersonBody) -> dict[str, Any]:
        """Create (or add to this org) a person; a generated password is returned once."""
        return to_json(
            await api.call(
                request, lambda c: c.create_person("", body.email, body.display_name, body.role, body.password)
            )
        )

    @r.post("/people/{person}/disable", tags=["people"])
    async def disable(request: Request, person: Name, body: DisableBody | None = None) -> dict[str, Any]:
        disabled = True if body is None else body.disabled
        return to_json(await api.call(request, lambda c: c.set_person_disabled("", person, disabled)))

    @r.post("/people/{person}/enable", tags=["people"])
    async def enable(request: Request, person: Name) -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.set_person_disabled("", person, False)))

    @r.post("/people/{person}/password", tags=["people"])
    async def reset(request: Request, person: Name, body: ResetBody) -> dict[str, Any]:
        """An org admin sets (or generates) a person's password; their sign-ins end."""
        return to_json(await api.call(request, lambda c: c.reset_password("", person, body.new_password)))

    @r.post("/me/password", status_code=204, tags=["people"])
    async def change(request: Request, body: ChangeBody) -> None:
        await api.call(request, lambda c: c.change_password(body.current_password, body.new_password))


def _key_routes(r: APIRouter, api: AdminApi) -> None:
    async def list_keys(request: Request) -> list[dict[str, Any]]:
        return [to_json(k) for k in await api.call(request, lambda c: c.list_api_keys())]

    async def create_key(request: Request, body: ApiKeyBody) -> dict[str, Any]:
        """Returns the secret once; only its hash is stored."""
        return to_json(
            await api.call(request, lambda c: c.create_api_key("", body.name, body.role, body.ttl_seconds, body.owner))
        )

    async def revoke_key(request: Request, key_id: Ident) -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.revoke_api_key("", key_id)))

    r.add_api_route("/api-keys", list_keys, methods=["GET"], tags=["api-keys"])
    r.add_api_route("/api-keys", create_key, methods=["POST"], status_code=201, tags=["api-keys"])
    r.add_api_route("/api-keys/{key_id}", revoke_key, methods=["DELETE"], tags=["api-keys"])
