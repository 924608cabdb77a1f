"""Fixtures that start the real stack on loopback: a migrated database (SQLite always,
Postgres when MONOMCP_TEST_POSTGRES_URL is set), the gRPC policy service, a real upstream
MCP server and the front, all inside the test's event loop."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mcp_front.app import build_app
from policy_service.api.server import PolicyServer, start
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.storage.migrate import upgrade
from policy_service.storage.models import Base
from tests.support.servers import free_port, serve_asgi
from tests.support.upstream import Upstream

OPERATOR = "operator-" + uuid.uuid4().hex
JWT_SECRET = "test-jwt-secret-" + "x" * 64
POSTGRES_URL = os.environ.get("MONOMCP_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgres"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="MONOMCP_TEST_POSTGRES_URL not set")
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and callspec.params.get("database_url") == "postgres" and not POSTGRES_URL:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    """A throwaway database, migrated once; tables are truncated between tests."""
    if not POSTGRES_URL:
        yield ""
        return
    name = f"monomcp_test_{uuid.uuid4().hex[:10]}"
    import asyncio

    import asyncpg

    base = make_url(POSTGRES_URL)

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(
            host=base.host or "127.0.0.1",
            port=base.port or 5432,
            user=base.username or "postgres",
            password=base.password,
            database=base.database or "postgres",
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "monomcp.db"
        shutil.copy(_sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("_postgres_database")
    yield url
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def truncate() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "MONOMCP_OPERATOR_TOKEN": OPERATOR,
        "JWT_SECRET": JWT_SECRET,
        "MONOMCP_CACHE_TTL_SECONDS": 0.0,
        "MONOMCP_REQUEST_STATE_KEY": "test-request-state-key",
        "MONOMCP_PUBLIC_URL": "http://127.0.0.1:8765",
        "MONOMCP_AUDIT_DIGEST_INTERVAL_SECONDS": 3600,
        # Every test client comes from 127.0.0.1; attack tests send many bad credentials on purpose.
        "MONOMCP_AUTH_FAILURE_BURST": 100_000,
        # Tests fan out from one key (100 concurrent re-calls, fuzzing); limit tests set their own.
        "MONOMCP_RATE_LIMIT_PER_SECOND": 100_000,
        "MONOMCP_RATE_LIMIT_BURST": 100_000,
        "MONOMCP_MAX_CONCURRENT_PER_KEY": 1_000,
        "MONOMCP_BACKEND_ALLOW_PRIVATE": True,  # the test upstreams listen on loopback
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings of every process in a test, including the front's service identity (scope
    `front`, issued into the database exactly as `monomcp services create` does)."""
    import asyncio

    return make_settings(database_url, MONOMCP_SERVICE_TOKEN=asyncio.run(issue_front_identity(database_url)))


async def issue_front_identity(database_url: str) -> str:
    from policy_service.identity.services import ServiceDirectory
    from policy_service.storage.database import create_engine, session_factory

    engine = create_engine(database_url)
    try:
        _, token = await ServiceDirectory(session_factory(engine), 0.0).create("front", ["front"])
        return token
    finally:
        await engine.dispose()


@pytest.fixture
async def policy(settings: Settings) -> AsyncIterator[PolicyServer]:
    server = await start(settings, "127.0.0.1:0")
    try:
        yield server
    finally:
        await server.stop(0.5)


@pytest.fixture
def policy_addr(policy: PolicyServer) -> str:
    return f"127.0.0.1:{policy.port}"


@pytest.fixture
async def operator(policy_addr: str) -> AsyncIterator[PolicyClient]:
    async with PolicyClient(policy_addr, OPERATOR) as client:
        yield client


@pytest.fixture
def service_token(settings: Settings) -> str:
    """The front's service credential (see `settings`)."""
    return settings.service_token


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    backend = Upstream()
    async with serve_asgi(backend.app()) as base:
        yield backend, f"{base}/mcp"


@dataclass
class World:
    """Orgs, keys and toolkits for a test: `acme` owns private `tools` and public `shared`
    toolkits on the test upstream; `globex` is another customer."""

    policy_addr: str
    upstream: Upstream
    upstream_url: str
    keys: dict[str, str]
    operator: PolicyClient
    service_token: str

    def client(self, who: str) -> PolicyClient:
        return PolicyClient(self.policy_addr, self.keys[who])

    def service(self) -> PolicyClient:
        """A client of the hot-path RPCs, authenticated as the front's service identity."""
        return PolicyClient(self.policy_addr, service_token=self.service_token)


@pytest.fixture
async def world(policy_addr: str, operator: PolicyClient, upstream: tuple[Upstream, str], service_token: str) -> World:
    backend, url = upstream
    catalogue = await backend.catalogue()
    keys: dict[str, str] = {}
    for org in ("acme", "globex"):
        await operator.create_org(org, org.title())
        for role in ("admin", "member"):
            keys[f"{org}:{role}"] = (await operator.create_api_key(org, f"{org} {role}", role)).secret
        keys[f"{org}:admin2"] = (await operator.create_api_key(org, f"{org} second admin", "admin")).secret
    for slug, visibility in (("tools", "private"), ("shared", "public")):
        await operator.upsert_toolkit(
            "acme", slug, name=slug, visibility=visibility, backend_url=url, backend_timeout_seconds=2.0
        )
        await operator.sync_tools("acme", slug, catalogue)
    return World(policy_addr, backend, url, keys, operator, service_token)


@pytest.fixture
async def front(settings: Settings, policy_addr: str, service_token: str) -> AsyncIterator[str]:
    port = free_port()
    front_settings = settings.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}", "service_token": service_token}
    )
    async with serve_asgi(build_app(front_settings, policy_addr), port) as base:
        yield base


@contextlib.asynccontextmanager
async def two_fronts_sharing_redis(settings: Settings, world: World) -> AsyncIterator[tuple[str, str]]:
    """Two front replicas on the world's policy service that share Redis (relays, streams,
    limits); yields their base URLs."""
    ports = free_port(), free_port()
    shared = {"service_token": world.service_token, "redis_url": "redis://127.0.0.1:6379/0"}
    apps = [
        build_app(settings.model_copy(update={"public_url": f"http://127.0.0.1:{p}", **shared}), world.policy_addr)
        for p in ports
    ]
    async with serve_asgi(apps[0], ports[0]) as a, serve_asgi(apps[1], ports[1]) as b:
        yield a, b


def mcp_client(url: str, token: str | None, mode: str = "legacy", **kwargs: Any) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(url, http_client=http), mode=mode, **kwargs)  # type: ignore[arg-type]
