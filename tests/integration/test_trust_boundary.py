"""The policy service trusts no caller by network position: the hot-path RPCs answer only
service identities with the right scope, a call completes once and only by its runner,
and the listener can require mutual TLS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from policy_service import errors
from policy_service.api.server import start
from policy_service.client import DECISION_ALLOW, PolicyClient, channel_tls
from policy_service.config import Settings
from policy_service.health_client import PolicyReadiness
from policy_service.storage.database import create_engine
from tests.conftest import World
from tests.support.certs import make_pki


async def _rows(settings: Settings, where: str = "1=1") -> list[dict[str, object]]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(f"SELECT * FROM audit_request_logs WHERE {where} ORDER BY seq"))
            return [dict(r._mapping) for r in result]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("bearer", ["", "member-key", "operator", "malformed"])
async def test_hot_path_refuses_callers_without_a_service_identity(
    world: World, settings: Settings, bearer: str
) -> None:
    token = {
        "": "",
        "member-key": world.keys["acme:member"],
        "operator": settings.operator_token,
        "malformed": "mmcpsvc_" + "A" * 54,
    }[bearer]
    async with PolicyClient(world.policy_addr, service_token=token) as client:
        with pytest.raises(errors.Unauthenticated):
            await client.authorize_tool_call(world.keys["acme:member"], "acme", "shared", "echo", "{}")
        with pytest.raises(errors.Unauthenticated):
            await client.list_tools(world.keys["acme:member"], "acme", "shared")
        with pytest.raises(errors.Unauthenticated):
            await client.record_request("", "acme", "tools", "tools/list", status="ok", client_address="6.6.6.6")
        with pytest.raises(errors.Unauthenticated):
            await client.complete_tool_call("0" * 32, "ok", '{"forged": true}')
    assert await _rows(settings, "client_address = '6.6.6.6'") == []


async def test_backend_details_go_only_to_identities_allowed_to_execute(world: World) -> None:
    reader = await world.operator.create_service_identity("reader", ["read"])
    async with PolicyClient(world.policy_addr, service_token=reader.secret) as client:
        assert (await client.list_tools(world.keys["globex:member"], "acme", "shared")).tools
        with pytest.raises(errors.PermissionDenied):
            await client.authorize_tool_call(world.keys["globex:member"], "acme", "shared", "echo", "{}")
    async with world.service() as front:
        allowed = await front.authorize_tool_call(world.keys["globex:member"], "acme", "shared", "echo", "{}")
    assert allowed.decision == DECISION_ALLOW and allowed.backend.url == world.upstream_url


async def test_a_call_completes_once_and_only_by_the_identity_that_ran_it(world: World, settings: Settings) -> None:
    other = await world.operator.create_service_identity("other component", ["front"])
    async with world.service() as front:
        decision = await front.authorize_tool_call(world.keys["acme:member"], "acme", "tools", "echo", "{}")
        async with PolicyClient(world.policy_addr, service_token=other.secret) as intruder:
            with pytest.raises(errors.NotFound):
                await intruder.complete_tool_call(decision.call_id, "ok", '{"forged": true}')
        await front.complete_tool_call(decision.call_id, "ok", '{"content": []}')
        with pytest.raises(errors.FailedPrecondition):
            await front.complete_tool_call(decision.call_id, "ok", '{"overwritten": true}')
    record = (await world.operator.query_audit("acme", call_id=decision.call_id)).records[0]
    assert record.status == "ok" and json.loads(record.response_json) == {"content": []}
    # Append-only: the call's own row was never rewritten; its completion is a second row.
    rows = await _rows(settings, f"call_id = '{decision.call_id}' OR completes = '{decision.call_id}'")
    assert [r["status"] for r in rows] == ["started", "ok"]


async def test_revoked_service_identity_is_refused(world: World) -> None:
    created = await world.operator.create_service_identity("short-lived", ["front"])
    async with PolicyClient(world.policy_addr, service_token=created.secret) as client:
        await client.list_tools(world.keys["acme:member"], "acme", "tools")
        await world.operator.revoke_service_identity("short-lived")
        with pytest.raises(errors.Unauthenticated):
            await client.list_tools(world.keys["acme:member"], "acme", "tools")


async def test_only_the_operator_manages_service_identities_and_secrets_are_hashed(
    world: World, settings: Settings
) -> None:
    async with world.client("acme:admin") as admin:
        with pytest.raises(errors.PermissionDenied):
            await admin.create_service_identity("sneaky", ["front"])
        with pytest.raises(errors.PermissionDenied):
            await admin.list_service_identities()
    with pytest.raises(errors.InvalidArgument):
        await world.operator.create_service_identity("bad scope", ["root"])
    listed = await world.operator.list_service_identities()
    assert [s.name for s in listed] == ["front"] and list(listed[0].scopes) == ["front"]
    engine = create_engine(settings.database_url)
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT secret_hash FROM service_identities"))).scalars().all()
    await engine.dispose()
    assert world.service_token not in stored and all(len(h) == 64 for h in stored)


async def test_request_facts_come_only_from_service_identities(world: World, settings: Settings) -> None:
    recorder = await world.operator.create_service_identity("recorder", ["record"])
    async with PolicyClient(world.policy_addr, service_token=recorder.secret) as client:
        await client.record_request(
            world.keys["acme:member"], "acme", "tools", "ping", status="ok", client_address="10.1.2.3"
        )
        with pytest.raises(errors.InvalidArgument):  # "started" belongs to authorized calls
            await client.record_request("", "acme", "tools", "ping", status="started")
    rows = await _rows(settings, "client_address = '10.1.2.3'")
    assert len(rows) == 1 and rows[0]["service_id"] and rows[0]["actor_type"] == "api_key"


async def test_mutual_tls_listener_refuses_clients_without_a_certificate(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    tls_settings = settings.model_copy(
        update={
            "policy_tls_cert": str(pki.server_cert),
            "policy_tls_key": str(pki.server_key),
            "policy_client_ca": str(pki.ca),
        }
    )
    server = await start(tls_settings, "127.0.0.1:0")
    address = f"localhost:{server.port}"
    try:
        with_cert = channel_tls(str(pki.ca), str(pki.client_cert), str(pki.client_key))
        async with PolicyClient(address, service_token=world.service_token, tls=with_cert) as client:
            assert (await client.list_tools(world.keys["acme:member"], "acme", "tools")).tools
        # A CallStream goes to each address `localhost` resolves to, the certificate still
        # checked against the configured name (ADR 0029).
        async with PolicyClient(address, service_token=world.service_token, tls=with_cert, stream=True) as client:
            decision = await client.authorize_tool_call(world.keys["acme:member"], "acme", "tools", "echo", "{}")
            assert decision.decision == DECISION_ALLOW
            assert client._streams is not None and client._streams.opened() >= 1
            # The front's readiness asks each of those addresses over the client's TLS too.
            readiness = PolicyReadiness(address, client.channel.open_target)
            try:
                assert await readiness.ready()
            finally:
                await readiness.close()
        without_cert = channel_tls(str(pki.ca))
        async with PolicyClient(address, service_token=world.service_token, tls=without_cert, timeout=2) as client:
            with pytest.raises(errors.PolicyError):
                await client.list_tools(world.keys["acme:member"], "acme", "tools")
            readiness = PolicyReadiness(address, client.channel.open_target)
            try:
                assert not await readiness.ready()
            finally:
                await readiness.close()
        async with PolicyClient(address, service_token=world.service_token, timeout=2) as plaintext:
            with pytest.raises(errors.PolicyError):
                await plaintext.list_tools(world.keys["acme:member"], "acme", "tools")
    finally:
        await server.stop(0.5)
