"""An admin action's audit row keeps the before and after of what it changed (issue #13):
read by one interceptor, never a secret, sealed by the digest chain like the rest of the row."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from policy_service import errors
from policy_service.audit.digests import AuditDigester, DigestPolicy
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.domain_client import DomainClient
from policy_service.storage.database import create_engine, session_factory
from policy_service.toolkits.stdio_backend import StdioSpec, to_address
from tests.conftest import World

HEADER_SECRET = "sk-live-header-secret-0123456789"


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url)
    yield engine
    await engine.dispose()


async def _rows(world: World, method: str, org: str = "acme") -> list[Any]:
    records = (await world.operator.query_audit(org, page_size=500)).records
    return [r for r in records if r.method == f"admin/{method}"]  # newest first


async def _change(world: World, method: str, org: str = "acme") -> dict[str, Any]:
    rows = await _rows(world, method, org)
    assert rows, f"no admin/{method} row"
    change: dict[str, Any] = json.loads(rows[0].response_json)
    return change


async def test_permission_changes_keep_old_and_new(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_tool_default("acme", "tools", "echo", "needs_approval")
        assert await _change(world, "SetToolDefault") == {
            "before": {"tool": "echo", "permission": "always_allow"},
            "after": {"tool": "echo", "permission": "needs_approval"},
        }
        await admin.set_org_default("acme", "tools", "echo", "blocked")
        assert await _change(world, "SetOrgDefault") == {
            "before": None,
            "after": {"tool": "echo", "permission": "blocked"},
        }
        await admin.clear_org_default("acme", "tools", "echo")
        assert await _change(world, "ClearOrgDefault") == {
            "before": {"tool": "echo", "permission": "blocked"},
            "after": None,
        }
        await admin.set_role_override("member", "acme", "tools", "echo", "always_allow")
        await admin.set_role_override("member", "acme", "tools", "echo", "blocked")
        assert await _change(world, "SetRoleOverride") == {
            "before": {"role": "member", "tool": "echo", "permission": "always_allow"},
            "after": {"role": "member", "tool": "echo", "permission": "blocked"},
        }
        await admin.clear_role_override("member", "acme", "tools", "echo")
        assert (await _change(world, "ClearRoleOverride"))["after"] is None


async def test_key_create_and_revoke_show_the_key_but_never_its_secret(world: World) -> None:
    async with world.client("acme:admin") as admin:
        created = await admin.create_api_key("acme", "ci bot", "member", ttl_seconds=3600)
        await admin.revoke_api_key("acme", created.key.id)
    made = await _change(world, "CreateApiKey")
    assert made["before"] is None
    assert (made["after"]["id"], made["after"]["name"], made["after"]["role"]) == (created.key.id, "ci bot", "member")
    assert made["after"]["expires_at"] and made["after"]["revoked_at"] is None
    revoked = await _change(world, "RevokeApiKey")
    assert revoked["before"]["revoked_at"] is None and revoked["after"]["revoked_at"]
    for row in await _rows(world, "CreateApiKey") + await _rows(world, "RevokeApiKey"):
        stored = row.request_json + row.response_json
        assert created.secret not in stored and "secret_hash" not in stored and "hash" not in row.response_json


async def test_account_changes_flag_a_new_password_without_any_hash(world: World) -> None:
    async with world.client("acme:admin") as admin:
        made = await admin.create_person("acme", "ann@acme.example", "Ann", "member", "first long password")
        await admin.set_person_disabled("acme", "ann@acme.example", True)
        await admin.reset_password("acme", "ann@acme.example", "second long password")
        await admin.add_member("acme", "ann@acme.example", "admin")
    created = await _change(world, "CreatePerson")
    assert created["before"] is None and created["after"]["email"] == "ann@acme.example"
    disabled = await _change(world, "SetPersonDisabled")
    assert (disabled["before"]["disabled"], disabled["after"]["disabled"]) == (False, True)
    assert disabled["after"]["password_changed"] is False
    reset = await _change(world, "ResetPassword")
    assert reset["after"]["password_changed"] is True
    role = await _change(world, "AddMember")
    assert (role["before"]["role"], role["after"]["role"]) == ("member", "admin")
    for method in ("CreatePerson", "SetPersonDisabled", "ResetPassword", "AddMember"):
        for row in await _rows(world, method):
            stored = row.request_json + row.response_json
            assert "long password" not in stored and "$argon2" not in stored and '"_password"' not in stored
    assert made.person.user_id == created["after"]["user_id"]


async def test_toolkit_changes_redact_backend_secrets(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.upsert_toolkit(
            "acme",
            "tools",
            visibility="public",
            backend_url=world.upstream_url,
            backend_headers={"Authorization": f"Bearer {HEADER_SECRET}", "X-Team": "growth"},
        )
    change = await _change(world, "UpsertToolkit")
    assert (change["before"]["visibility"], change["after"]["visibility"]) == ("private", "public")
    assert change["before"]["backend_headers"] == {}
    assert change["after"]["backend_headers"] == {"Authorization": "[REDACTED]", "X-Team": "growth"}
    row = (await _rows(world, "UpsertToolkit"))[0]
    assert HEADER_SECRET not in row.request_json + row.response_json
    assert "change.after.backend_headers.Authorization" in list(row.redacted_paths)


async def test_domain_add_and_remove(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await DomainClient(admin).add_domain("", "mcp.acme.test")
        await DomainClient(admin).remove_domain("", "mcp.acme.test")
    assert await _change(world, "AddDomain") == {
        "before": None,
        "after": {"domain": "mcp.acme.test", "verified_at": None},
    }
    assert await _change(world, "RemoveDomain") == {
        "before": {"domain": "mcp.acme.test", "verified_at": None},
        "after": None,
    }


async def test_approval_decision_keeps_status_and_decider(world: World) -> None:
    await world.operator.set_tool_default("acme", "tools", "echo", "needs_approval")
    async with world.service() as front:
        pending = await front.authorize_tool_call(world.keys["acme:member"], "acme", "tools", "echo", '{"text": "x"}')
    async with world.client("acme:admin") as admin:
        await admin.decide_approval(pending.approval.id, False, "not today")
    change = await _change(world, "DecideApproval")
    assert (change["before"]["status"], change["after"]["status"]) == ("pending", "denied")
    assert (change["before"]["decided_by"], change["after"]["decided_by"]) == ("", "acme admin")
    assert change["after"]["reason"] == "not today"


async def test_a_refused_action_keeps_only_its_before(world: World) -> None:
    async with world.client("acme:member") as member:
        with pytest.raises(errors.PermissionDenied):
            await member.set_tool_default("acme", "tools", "echo", "blocked")
    refused = (await _rows(world, "SetToolDefault"))[0]
    assert refused.status == "permission_denied"
    assert json.loads(refused.response_json) == {"before": {"tool": "echo", "permission": "always_allow"}}


async def test_another_orgs_object_never_shows_in_the_callers_row(world: World) -> None:
    async with world.client("globex:admin") as globex:
        with pytest.raises(errors.PolicyError):
            await globex.upsert_toolkit("acme", "tools", visibility="public")
    row = (await _rows(world, "UpsertToolkit", "globex"))[0]
    assert row.response_json == "" and world.upstream_url not in row.response_json


async def test_verify_proves_the_before_and_after(world: World, engine: AsyncEngine) -> None:
    async with world.client("acme:admin") as admin:
        await admin.set_tool_default("acme", "tools", "echo", "needs_approval")
    digester = AuditDigester(session_factory(engine), DigestPolicy(settle=timedelta(0)))
    await digester.write_digest()
    assert (await world.operator.verify_audit()).ok
    row = (await _rows(world, "SetToolDefault"))[0]
    forged = row.response_json.replace('"needs_approval"', '"always_allow"')
    assert forged != row.response_json
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_request_logs SET response_payload = :p WHERE call_id = :c"),
            {"p": forged, "c": row.call_id},
        )
    result = await world.operator.verify_audit()
    assert not result.ok and f"row {row.seq} edited" in "\n".join(result.problems)


async def test_a_stdio_backend_shows_its_command_but_not_its_environment(world: World) -> None:
    spec = StdioSpec("/usr/bin/env", ("mcp-server",), {"API_TOKEN": HEADER_SECRET})
    await world.operator.upsert_toolkit("acme", "local", name="local", backend_stdio=spec)
    row = (await _rows(world, "UpsertToolkit"))[0]
    change = json.loads(row.response_json)
    assert change["after"]["backend_url"] == "stdio"
    assert change["after"]["backend_stdio"]["command"] == "/usr/bin/env"
    assert change["after"]["backend_stdio"]["env"] == {"API_TOKEN": "[REDACTED]"}
    assert HEADER_SECRET not in row.response_json and to_address(spec) not in row.response_json
    assert to_address(spec)[len("stdio:v1:") :][:20] not in row.response_json


async def test_changing_ones_own_password_is_a_flag(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.create_person("acme", "bo@acme.example", "Bo", "member", "first long password")
    async with PolicyClient(world.policy_addr) as anonymous:
        token = (await anonymous.login("bo@acme.example", "first long password", "acme")).access_token
    async with PolicyClient(world.policy_addr, token) as bo:
        await bo.change_password("first long password", "second long password")
    row = (await _rows(world, "ChangePassword"))[0]
    change = json.loads(row.response_json)
    assert change["before"]["email"] == change["after"]["email"] == "bo@acme.example"
    assert change["after"]["password_changed"] is True
    assert "long password" not in row.request_json + row.response_json


POLICY = """\
org: acme
toolkits:
  acme/tools:
    echo:
      default: needs_approval
"""


async def test_apply_policy_keeps_each_rules_before_and_after(world: World) -> None:
    async with world.client("acme:admin") as admin:
        await admin.apply_policy(POLICY)
    change = await _change(world, "ApplyPolicy")
    assert change["before"] == {"acme/tools echo default": None}  # the org had no default of its own
    assert change["after"] == {"acme/tools echo default": "needs_approval"}
