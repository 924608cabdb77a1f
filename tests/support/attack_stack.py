"""One real stack shared by a module of attack cases: a migrated database, the gRPC policy
service, a counting upstream and the front on loopback, with two customer orgs, their keys,
JWT users and toolkits.

Cases share the stack to keep the matrix fast, so each case finds its own evidence: it sends
a unique `X-Request-Id` (the audit row's `request_id`) and counts upstream executions as a
difference (`executions()` before and after).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_front.app import build_app
from policy_service.api.server import start
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.storage.database import create_engine
from tests.conftest import issue_front_identity
from tests.support.raw_http import RawResponse, raw_post
from tests.support.servers import free_port, serve_asgi
from tests.support.upstream import Upstream

JWT_ISSUER = "https://idp.example.test"
JWT_AUDIENCE = "monomcp-gateway"
ACCEPT = "application/json, text/event-stream"
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
# Orgs, and the people in them who sign in with JWTs (email → role).
ORGS = ("acme", "globex")
USERS = {"acme": {"alice@acme.test": "admin", "bob@acme.test": "member"}, "globex": {"gina@globex.test": "admin"}}
# Toolkits: (owner org, slug, visibility). acme/other has the same tools as acme/tools.
TOOLKITS = (
    ("acme", "tools", "private"),
    ("acme", "shared", "public"),
    ("acme", "other", "private"),
    ("globex", "gx", "private"),
)


@dataclass
class Stack:
    settings: Settings
    policy_addr: str
    front: str
    upstream: Upstream
    upstream_url: str
    operator: PolicyClient
    engine: AsyncEngine
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    @property
    def service_token(self) -> str:
        return self.settings.service_token

    def client(self, who: str) -> PolicyClient:
        """An admin-API client holding `who`'s key (e.g. "acme:admin")."""
        return PolicyClient(self.policy_addr, self.keys[who])

    def service(self, token: str | None = None) -> PolicyClient:
        """A hot-path client authenticated as a service identity (the front's by default)."""
        return PolicyClient(self.policy_addr, service_token=self.service_token if token is None else token)

    def executions(self) -> int:
        """Tool executions the upstream has performed so far."""
        return sum(self.upstream.calls.values())

    def jwt(self, subject: str, org: str, ttl: int = 600, **claims: Any) -> str:
        """A valid access token for `subject` in `org` (HS256, issuer and audience set)."""
        now = int(time.time())
        payload = {"sub": subject, "org": org, "iat": now, "exp": now + ttl, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE}
        return jwt.encode(payload | claims, self.settings.jwt_secret, algorithm="HS256")

    async def request_approval(self, who: str, arguments: dict[str, Any], toolkit: str = "acme/tools") -> str:
        """A pending approval for `transfer`, requested with `who`'s key (through the front's identity)."""
        org, slug = toolkit.split("/")
        async with self.service() as front:
            decision = await front.authorize_tool_call(self.keys[who], org, slug, "transfer", json.dumps(arguments))
        if not decision.approval.id:
            raise RuntimeError(f"expected a pending approval, got {decision}")
        return str(decision.approval.id)

    async def audit_rows(self, request_id: str) -> list[dict[str, Any]]:
        """Every audit row the request with this X-Request-Id left, oldest first."""
        return await self.rows_where("request_id = :v", request_id)

    async def rows_where(self, where: str, value: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                text(f"SELECT * FROM audit_request_logs WHERE {where} ORDER BY seq"), {"v": value}
            )
            return [dict(r._mapping) for r in result]

    async def post(
        self,
        path: str,
        bearer: str | None,
        body: dict[str, Any] | bytes,
        *,
        version: str = LEGACY,
        authorization: str | None = None,
        request_id: str = "",
    ) -> RawResponse:
        """A raw POST to the front, headers sent byte for byte. `authorization` (when not
        None) is the whole Authorization header; else `bearer` (when not None) as a Bearer."""
        headers = [("Accept", ACCEPT), ("Content-Type", "application/json"), ("MCP-Protocol-Version", version)]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        elif bearer is not None:
            headers.append(("Authorization", f"Bearer {bearer}"))
        if request_id:
            headers.append(("X-Request-Id", request_id))
        if version == MODERN and isinstance(body, dict):  # 2026-07-28 names the method (and tool) in headers
            headers.append(("Mcp-Method", str(body.get("method", ""))))
            if body.get("method") == "tools/call":
                headers.append(("Mcp-Name", str(body["params"]["name"])))
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await raw_post(f"{self.front}{path}", headers, content)

    async def rest(self, method: str, path: str, bearer: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.request(
                method, f"{self.front}{path}", headers={"Authorization": f"Bearer {bearer}"}, **kwargs
            )


def new_request_id(case: str) -> str:
    """A unique X-Request-Id naming the case (the front keeps plain tokens as given)."""
    return f"atk-{case[:40]}-{uuid.uuid4().hex[:12]}"


def tools_call(name: str, arguments: dict[str, Any], *, version: str = LEGACY, **params: Any) -> dict[str, Any]:
    """A JSON-RPC tools/call body for either protocol era."""
    body: dict[str, Any] = {"name": name, "arguments": arguments, **params}
    if version == MODERN:
        meta = params.pop("_meta", {}) if "_meta" in params else {}
        body["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}},
            **meta,
        }
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": body}


def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


async def _populate(stack: Stack) -> None:
    operator = stack.operator
    catalogue = await stack.upstream.catalogue()
    for org in ORGS:
        await operator.create_org(org, org.title())
        for name, role in (("admin", "admin"), ("admin2", "admin"), ("member", "member"), ("member2", "member")):
            created = await operator.create_api_key(org, f"{org} {name}", role)
            stack.keys[f"{org}:{name}"], stack.key_ids[f"{org}:{name}"] = created.secret, created.key.id
        for email, role in USERS[org].items():
            await operator.add_member(org, email, role)
    for org, slug, visibility in TOOLKITS:
        await operator.upsert_toolkit(
            org, slug, name=slug, visibility=visibility, backend_url=stack.upstream_url, backend_timeout_seconds=2.0
        )
        await operator.sync_tools(org, slug, catalogue)


@asynccontextmanager
async def attack_stack(settings: Settings) -> AsyncIterator[Stack]:
    """Starts everything for `settings` (its database already migrated) and yields the stack."""
    settings = settings.model_copy(update={"service_token": await issue_front_identity(settings.database_url)})
    policy = await start(settings, "127.0.0.1:0")
    policy_addr = f"127.0.0.1:{policy.port}"
    upstream = Upstream()
    engine = create_engine(settings.database_url)
    try:
        async with (
            serve_asgi(upstream.app()) as upstream_base,
            PolicyClient(policy_addr, settings.operator_token) as operator,
        ):
            port = free_port()
            front_settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
            async with serve_asgi(build_app(front_settings, policy_addr), port) as front:
                stack = Stack(front_settings, policy_addr, front, upstream, f"{upstream_base}/mcp", operator, engine)
                await _populate(stack)
                yield stack
    finally:
        await engine.dispose()
        await policy.stop(0.5)
