"""Prometheus scrapes of both processes show what operators alert on."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from policy_service import errors
from policy_service.api.server import start
from policy_service.client import PolicyClient
from policy_service.config import Settings
from tests.conftest import World, mcp_client
from tests.support.servers import free_port


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


async def test_front_metrics_count_requests_and_tool_calls(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        await client.call_tool("echo", {"text": "hi"})
        await client.call_tool("transfer", {"amount": 1, "to": "a"})
    async with httpx.AsyncClient() as http:
        await http.post(f"{front}/acme/nope/mcp", headers={"Authorization": f"Bearer {world.keys['acme:member']}"})
        scrape = await http.get(f"{front}/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    samples = _samples(scrape.text)
    assert _value(samples, "monomcp_front_requests_total", route="mcp", method="POST", status="200") >= 2
    assert _value(samples, "monomcp_front_requests_total", route="mcp", method="POST", status="404") == 1
    assert _value(samples, "monomcp_front_request_seconds_count", route="mcp") >= 3
    assert ("monomcp_front_requests_in_flight", frozenset()) in samples
    assert "/acme/nope/mcp" not in scrape.text  # paths never become labels
    calls = "monomcp_front_tool_calls_total"
    assert _value(samples, calls, org="acme", toolkit="tools", decision="allow", status="ok") == 1
    assert _value(samples, "monomcp_front_upstream_seconds_count") == 1
    assert _value(samples, calls, toolkit="tools", decision="pending_approval") == 1


async def test_front_metrics_can_require_a_token(settings: Settings, policy_addr: str) -> None:
    from mcp_front.app import build_app
    from tests.support.servers import serve_asgi

    guarded = settings.model_copy(update={"metrics_token": "scrape-secret"})
    async with serve_asgi(build_app(guarded, policy_addr)) as base, httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/metrics")).status_code == 401
        ok = await http.get(f"{base}/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert ok.status_code == 200 and "monomcp_front_requests_total" in ok.text


async def test_policy_metrics_show_rpcs_decisions_and_the_audit_writer(world: World, settings: Settings) -> None:
    port = free_port()
    server = await start(settings.model_copy(update={"policy_metrics_listen": f"127.0.0.1:{port}"}), "127.0.0.1:0")
    address = f"127.0.0.1:{server.port}"
    try:
        async with PolicyClient(address, service_token=world.service_token) as front:
            decision = await front.authorize_tool_call(world.keys["acme:member"], "acme", "tools", "echo", "{}")
            await front.complete_tool_call(decision.call_id, "ok", "{}")
        async with PolicyClient(address) as anonymous:
            with pytest.raises(errors.Unauthenticated):
                await anonymous.list_tools(world.keys["acme:member"], "acme", "tools")
        async with httpx.AsyncClient() as http:
            samples = _samples((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
    finally:
        await server.stop(0.5)
    assert _value(samples, "monomcp_policy_rpc_seconds_count", method="AuthorizeToolCall", code="OK") == 1
    assert _value(samples, "monomcp_policy_rpc_seconds_count", method="ListTools", code="UNAUTHENTICATED") == 1
    assert _value(samples, "monomcp_policy_decisions_total", decision="allow") == 1
    assert _value(samples, "monomcp_policy_audit_commit_seconds_count") >= 2
    assert _value(samples, "monomcp_policy_database_up") == 1
    assert ("monomcp_policy_audit_queue_depth", frozenset()) in samples
