"""One gateway (SQLite, the gRPC policy service and the front on loopback) shared by a test
module, with orgs `acme` and `globex` and an admin and a member key for each. Modules that
start slow backends (Node processes, stdio pools) share one stack instead of one per test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from mcp_front.app import build_app
from policy_service.api.server import start
from policy_service.client import PolicyClient
from tests.conftest import OPERATOR, issue_front_identity, make_settings
from tests.support.servers import free_port, serve_asgi


@dataclass
class Gateway:
    front: str
    policy_addr: str
    operator: PolicyClient
    keys: dict[str, str]

    def client(self, who: str) -> PolicyClient:
        """An admin-API client holding `who`'s key (e.g. "acme:admin")."""
        return PolicyClient(self.policy_addr, self.keys[who])

    def endpoint(self, org: str, toolkit: str) -> str:
        return f"{self.front}/{org}/{toolkit}/mcp"


@asynccontextmanager
async def gateway(sqlite_template: Path, folder: Path) -> AsyncIterator[Gateway]:
    path = folder / "gateway.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    settings = make_settings(url, MONOMCP_SERVICE_TOKEN=await issue_front_identity(url))
    policy = await start(settings, "127.0.0.1:0")
    policy_addr = f"127.0.0.1:{policy.port}"
    try:
        async with PolicyClient(policy_addr, OPERATOR) as operator:
            keys: dict[str, str] = {}
            for org in ("acme", "globex"):
                await operator.create_org(org, org.title())
                for role in ("admin", "member"):
                    keys[f"{org}:{role}"] = (await operator.create_api_key(org, f"{org} {role}", role)).secret
            port = free_port()
            front_settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
            async with serve_asgi(build_app(front_settings, policy_addr), port) as front:
                yield Gateway(front, policy_addr, operator, keys)
    finally:
        await policy.stop(0.5)
