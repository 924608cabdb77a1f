"""The conformance fixture backend (demo_backend/conformance_server.py) as a toolkit of the
test world: acme's private `relay` toolkit, every tool allowed, so tests drive what flows
during a call (progress, logs, sampling, elicitation, cancellation) through the gateway."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.types import ASGIApp

from demo_backend.conformance_server import Observed, build_app
from mcp_front.backends.upstream import UpstreamPool
from policy_service.client import PolicyClient
from policy_service.toolkits.egress import EgressPolicy
from tests.support.servers import serve_asgi

TOOLKIT = "relay"


@dataclass
class RelayBackend:
    url: str
    observed: Observed


async def _catalogue(url: str) -> list[dict[str, str]]:
    pool = UpstreamPool(egress=EgressPolicy(allow_private=True))
    try:
        listed = await pool.list_tools(url, {})
    finally:
        await pool.close()
    return [
        {
            "name": t["name"],
            "description": t.get("description", ""),
            "input_schema_json": json.dumps(t.get("inputSchema") or {"type": "object"}),
            "default_permission": "always_allow",
        }
        for t in listed
    ]


@contextlib.asynccontextmanager
async def relay_toolkit(
    operator: PolicyClient, timeout_seconds: float = 30.0, wrap: Callable[[ASGIApp], ASGIApp] | None = None
) -> AsyncIterator[RelayBackend]:
    """Serves the fixture on loopback (inside `wrap`, e.g. a stand-in for an older backend)
    and registers it as `acme/relay`."""
    observed = Observed()
    app = build_app(observed)
    async with serve_asgi(wrap(app) if wrap is not None else app) as base:
        url = f"{base}/mcp"
        await operator.upsert_toolkit(
            "acme",
            TOOLKIT,
            name=TOOLKIT,
            visibility="private",
            backend_url=url,
            backend_timeout_seconds=timeout_seconds,
        )
        await operator.sync_tools("acme", TOOLKIT, await _catalogue(url))
        yield RelayBackend(url, observed)
