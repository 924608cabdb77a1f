"""Attack matrix: object ids of another org (IDOR). Approvals, audit records, API keys and
toolkits of another org answer exactly like ids that do not exist, change nothing, and
never reveal a backend; a caller of the same org without the role is refused too."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from policy_service import errors
from policy_service.client import APPROVAL_STATUS_NAMES, PolicyClient
from tests.support.attack_stack import Stack, new_request_id, tools_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Who attacks acme's objects: another org's admin (key and JWT) and member, and acme's other member.
ATTACKERS = {
    "globex-admin-key": lambda s: s.keys["globex:admin"],
    "globex-admin-jwt": lambda s: s.jwt("gina@globex.test", "globex"),
    "globex-member-key": lambda s: s.keys["globex:member"],
    "acme-other-member": lambda s: s.keys["acme:member2"],
}
OUTSIDERS = [a for a in ATTACKERS if a.startswith("globex")]


async def _status(stack: Stack, approval_id: str) -> str:
    return APPROVAL_STATUS_NAMES[(await stack.operator.get_approval(approval_id)).status]


async def _refusal(call: Callable[[], Awaitable[Any]]) -> tuple[str, str]:
    try:
        await call()
    except errors.PolicyError as exc:
        return type(exc).__name__, exc.reason
    return "allowed", ""


def _approval_rpcs(client: PolicyClient, approval_id: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "GetApproval": lambda: client.get_approval(approval_id),
        "DecideApproval-approve": lambda: client.decide_approval(approval_id, True),
        "DecideApproval-deny": lambda: client.decide_approval(approval_id, False, "sabotage"),
    }


@pytest.mark.parametrize("rpc", ["GetApproval", "DecideApproval-approve", "DecideApproval-deny"])
@pytest.mark.parametrize("attacker", list(ATTACKERS))
async def test_another_orgs_approval_is_not_found_on_the_admin_api(stack: Stack, attacker: str, rpc: str) -> None:
    approval_id = await stack.request_approval("acme:member", {"amount": 3, "to": f"{attacker}-{rpc}"})
    async with PolicyClient(stack.policy_addr, ATTACKERS[attacker](stack)) as client:
        real = await _refusal(_approval_rpcs(client, approval_id)[rpc])
        unknown = await _refusal(_approval_rpcs(client, uuid.uuid4().hex)[rpc])
    if attacker in OUTSIDERS or rpc == "GetApproval":
        assert real == unknown == ("NotFound", "APPROVAL_NOT_FOUND")
    else:  # a member of the same org may learn that the id exists, not decide it
        assert real == ("PermissionDenied", "NOT_ADMIN")
    assert await _status(stack, approval_id) == "pending"


@pytest.mark.parametrize("attacker", list(ATTACKERS))
async def test_another_principals_approval_status_is_not_found_on_the_hot_path(stack: Stack, attacker: str) -> None:
    approval_id = await stack.request_approval("acme:member", {"amount": 4, "to": attacker})
    async with stack.service() as front:
        real = await _refusal(lambda: front.get_approval_status(ATTACKERS[attacker](stack), approval_id))
        unknown = await _refusal(lambda: front.get_approval_status(ATTACKERS[attacker](stack), uuid.uuid4().hex))
    assert real == unknown == ("NotFound", "APPROVAL_NOT_FOUND")


@pytest.mark.parametrize(
    ("attacker", "path"),
    [
        ("globex-member-key", "/globex/gx/mcp"),
        ("globex-member-key", "/acme/shared/mcp"),
        ("acme-other-member", "/acme/tools/mcp"),
    ],
)
async def test_approval_status_tool_shows_nothing_of_another_principals_approval(
    stack: Stack, attacker: str, path: str
) -> None:
    approval_id = await stack.request_approval("acme:member", {"amount": 5, "to": f"secret-{attacker}"})
    request_id = new_request_id("approval-status-idor")
    response = await stack.post(
        path,
        ATTACKERS[attacker](stack),
        tools_call("approval_status", {"approval_id": approval_id}),
        request_id=request_id,
    )
    result = response.json()["result"]
    assert result["isError"] and "No approval" in result["content"][0]["text"]
    assert "secret-" not in response.text and "transfer" not in response.text
    assert [r["status"] for r in await stack.audit_rows(request_id)] == ["invalid"]


@pytest.mark.parametrize("action", ["get", "approve", "deny"])
@pytest.mark.parametrize("attacker", ["globex-admin-key", "globex-admin-jwt"])
async def test_rest_approval_of_another_org_is_the_same_404_as_an_unknown_id(
    stack: Stack, attacker: str, action: str
) -> None:
    approval_id = await stack.request_approval("acme:member", {"amount": 6, "to": f"rest-{attacker}-{action}"})
    bearer = ATTACKERS[attacker](stack)

    async def hit(target: str) -> tuple[int, bytes]:
        if action == "get":
            response = await stack.rest("GET", f"/api/v1/approvals/{target}", bearer)
        elif action == "approve":
            response = await stack.rest("POST", f"/api/v1/approvals/{target}/approve", bearer)
        else:
            response = await stack.rest("POST", f"/api/v1/approvals/{target}/deny", bearer, json={"reason": "no"})
        return response.status_code, response.content

    real, unknown = await hit(approval_id), await hit(uuid.uuid4().hex)
    assert real == unknown and real[0] == 404
    assert await _status(stack, approval_id) == "pending"


async def test_listing_or_watching_another_orgs_approvals_is_not_found(stack: Stack) -> None:
    async with stack.client("globex:admin") as globex:
        assert await _refusal(lambda: globex.list_approvals("acme")) == ("NotFound", "ORG_NOT_FOUND")

        async def watch() -> None:
            async for _ in globex.watch_approvals("acme"):
                break

        assert (await _refusal(watch))[0] == "NotFound"
        listed = await globex.list_approvals()
    assert all(a.org_slug == "globex" for a in listed.approvals)


async def _acme_call(stack: Stack) -> str:
    request_id = new_request_id("acme-call")
    await stack.post(
        "/acme/tools/mcp", stack.keys["acme:member"], tools_call("echo", {"text": "private"}), request_id=request_id
    )
    return str((await stack.audit_rows(request_id))[0]["call_id"])


@pytest.mark.parametrize(
    ("attacker", "expected"),
    [
        ("globex-admin-key", ("NotFound", "ORG_NOT_FOUND")),
        ("globex-admin-jwt", ("NotFound", "ORG_NOT_FOUND")),
        ("acme-other-member", ("PermissionDenied", "NOT_ADMIN")),
    ],
)
async def test_audit_of_another_org_is_refused(stack: Stack, attacker: str, expected: tuple[str, str]) -> None:
    call_id = await _acme_call(stack)
    async with PolicyClient(stack.policy_addr, ATTACKERS[attacker](stack)) as client:
        assert await _refusal(lambda: client.query_audit("acme")) == expected
        assert await _refusal(lambda: client.query_audit("acme", call_id=call_id)) == expected
        if attacker.startswith("globex"):  # its own org's view never contains acme's rows
            own = await client.query_audit(call_id=call_id)
            assert list(own.records) == []


async def test_rest_audit_and_export_show_no_row_of_another_org(stack: Stack) -> None:
    call_id = await _acme_call(stack)
    bearer = stack.keys["globex:admin"]
    page = await stack.rest("GET", "/api/v1/audit", bearer, params={"call_id": call_id})
    assert page.status_code == 200 and page.json().get("records", []) == []
    export = await stack.rest("GET", "/api/v1/audit/export", bearer)
    assert export.status_code == 200 and call_id not in export.text
    rows = [json.loads(line) for line in export.text.splitlines() if line.strip()]
    # Globex's own rows may name acme (its refused attempts on acme's toolkits); none is acme's.
    assert rows and all(r.get("org_slug") == "globex" for r in rows)


@pytest.mark.parametrize("how", ["rpc-with-org", "rpc-own-org", "rest-delete"])
@pytest.mark.parametrize("attacker", ["globex-admin-key", "globex-admin-jwt", "acme-other-member"])
async def test_revoking_another_orgs_api_key_is_refused_and_the_key_keeps_working(
    stack: Stack, attacker: str, how: str
) -> None:
    victim = await stack.operator.create_api_key("acme", f"victim {attacker} {how}", "member")
    bearer = ATTACKERS[attacker](stack)
    if how == "rest-delete":
        response = await stack.rest("DELETE", f"/api/v1/keys/{victim.key.id}", bearer)
        assert response.status_code in (403, 404)
    else:
        org = "acme" if how == "rpc-with-org" else ""
        async with PolicyClient(stack.policy_addr, bearer) as client:
            kind, _ = await _refusal(lambda: client.revoke_api_key(org, victim.key.id))
        assert kind in ("NotFound", "PermissionDenied")
    async with stack.service() as front:
        assert (await front.list_tools(victim.secret, "acme", "tools")).principal.id == victim.key.id


@pytest.mark.parametrize("attacker", ["globex-admin-key", "acme-other-member"])
async def test_minting_or_listing_keys_of_another_org_is_refused(stack: Stack, attacker: str) -> None:
    async with PolicyClient(stack.policy_addr, ATTACKERS[attacker](stack)) as client:
        minted = await _refusal(lambda: client.create_api_key("acme", "backdoor", "admin"))
        listed = await _refusal(lambda: client.list_api_keys("acme"))
    assert minted[0] in ("NotFound", "PermissionDenied") and listed[0] in ("NotFound", "PermissionDenied")
    assert "backdoor" not in [k.name for k in await stack.operator.list_api_keys("acme")]


TOOLKIT_WRITES: dict[str, Callable[[PolicyClient, Stack], Awaitable[Any]]] = {
    "upsert-private": lambda c, s: c.upsert_toolkit("acme", "tools", backend_url="http://127.0.0.1:1/evil"),
    "upsert-public": lambda c, s: c.upsert_toolkit("acme", "shared", backend_url="http://127.0.0.1:1/evil"),
    "upsert-make-public": lambda c, s: c.upsert_toolkit("acme", "other", visibility="public"),
    "sync-private": lambda c, s: c.sync_tools(
        "acme", "tools", [{"name": "evil", "default_permission": "always_allow"}]
    ),
    "sync-public": lambda c, s: c.sync_tools(
        "acme", "shared", [{"name": "evil", "default_permission": "always_allow"}]
    ),
    "tool-default-public": lambda c, s: c.set_tool_default("acme", "shared", "wipe", "always_allow"),
    "org-default-for-acme": lambda c, s: c.set_org_default("acme", "shared", "transfer", "always_allow", org="acme"),
    "role-override-for-acme": lambda c, s: c.set_role_override(
        "member", "acme", "tools", "transfer", "always_allow", org="acme"
    ),
}


@pytest.mark.parametrize("write", list(TOOLKIT_WRITES))
@pytest.mark.parametrize("attacker", ["globex-admin-key", "globex-admin-jwt", "acme-other-member"])
async def test_another_orgs_toolkits_and_permissions_cannot_be_changed(stack: Stack, attacker: str, write: str) -> None:
    before = {(t.slug, t.backend_url, t.visibility) for t in await stack.operator.list_toolkits("acme")}
    tools_before = {t.name: t.default_permission for t in await stack.operator.list_catalogue("acme", "shared")}
    rules_before = len(await stack.operator.list_permission_rules("acme"))
    async with PolicyClient(stack.policy_addr, ATTACKERS[attacker](stack)) as client:
        kind, _ = await _refusal(lambda: TOOLKIT_WRITES[write](client, stack))
    assert kind in ("NotFound", "PermissionDenied"), kind
    assert {(t.slug, t.backend_url, t.visibility) for t in await stack.operator.list_toolkits("acme")} == before
    assert {t.name: t.default_permission for t in await stack.operator.list_catalogue("acme", "shared")} == tools_before
    assert len(await stack.operator.list_permission_rules("acme")) == rules_before


@pytest.mark.parametrize(
    ("attacker", "slug", "expected"),
    [
        ("globex-admin-key", "tools", "NotFound"),
        ("globex-admin-key", "other", "NotFound"),
        ("globex-admin-key", "shared", "no-backend"),
        ("globex-admin-jwt", "shared", "no-backend"),
        ("globex-member-key", "shared", "no-backend"),
        ("acme-other-member", "tools", "no-backend"),
        ("acme-other-member", "shared", "no-backend"),
    ],
)
async def test_backend_url_goes_only_to_the_owning_orgs_admins(
    stack: Stack, attacker: str, slug: str, expected: str
) -> None:
    async with PolicyClient(stack.policy_addr, ATTACKERS[attacker](stack)) as client:
        if expected == "NotFound":
            assert (await _refusal(lambda: client.get_toolkit("acme", slug)))[0] == "NotFound"
            assert (await _refusal(lambda: client.list_catalogue("acme", slug)))[0] == "NotFound"
            return
        toolkit = await client.get_toolkit("acme", slug)
        listed = await client.list_toolkits(include_public=True) if attacker.startswith("globex-admin") else []
    assert toolkit.backend_url == "" and not toolkit.manageable
    assert all(t.backend_url == "" for t in listed if t.org_slug == "acme")
    rest = await stack.rest("GET", "/api/v1/toolkits", ATTACKERS[attacker](stack))
    if rest.status_code == 200:
        assert all(not t.get("backend_url") for t in rest.json() if t["org_slug"] == "acme")
    else:  # members may not list toolkits at all
        assert rest.status_code == 403


@pytest.mark.parametrize("slug", ["tools", "shared", "nope"])
async def test_rest_sync_of_another_orgs_toolkit_sends_nothing_to_its_backend(stack: Stack, slug: str) -> None:
    seen = len(stack.upstream.requests)
    response = await stack.rest("POST", f"/api/v1/toolkits/acme/{slug}/sync", stack.keys["globex:admin"])
    assert response.status_code in (403, 404), response.text
    assert stack.upstream_url not in response.text
    assert len(stack.upstream.requests) == seen
    assert json.loads(response.text)["detail"]["reason"]
