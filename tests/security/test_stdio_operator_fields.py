"""Attack matrix: an org admin editing an operator-registered stdio toolkit (a command that
runs on the gateway's hosts, ADR 0017). Who may reach it (visibility) and how it runs (the
backend, its headers and timeout) are the operator's; the org admin keeps its name,
description and new-tool default. A refusal changes nothing and is itself audited.

Regression: an org admin could make a stdio toolkit public (every org, and any caller of a
public toolkit, could then run the gateway host's command) or swap its command for a URL."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import types_pb2
from policy_service.client import PolicyClient
from policy_service.toolkits.stdio_backend import StdioSpec
from tests.support.attack_stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEC = StdioSpec(command="/usr/bin/env", args=("true",))
Edit = Callable[[PolicyClient, str], Coroutine[Any, Any, object]]

EDITS: dict[str, Edit] = {
    "make-public": lambda c, slug: c.upsert_toolkit("acme", slug, visibility="public"),
    "swap-for-url": lambda c, slug: c.upsert_toolkit("acme", slug, backend_url="http://93.184.215.14/mcp"),
    "backend-headers": lambda c, slug: c.upsert_toolkit("acme", slug, backend_headers={"X-A": "b"}),
    "backend-timeout": lambda c, slug: c.upsert_toolkit("acme", slug, backend_timeout_seconds=3600.0),
}


async def _stdio_toolkit(stack: Stack, slug: str) -> None:
    await stack.operator.upsert_toolkit(
        "acme", slug, name=slug, visibility="private", backend_stdio=SPEC, backend_timeout_seconds=5.0
    )


@pytest.mark.parametrize("edit", list(EDITS))
async def test_an_org_admin_cannot_change_a_stdio_toolkits_operator_fields(stack: Stack, edit: str) -> None:
    slug = f"stdio-{edit}"
    await _stdio_toolkit(stack, slug)
    before = await stack.operator.get_toolkit("acme", slug)
    async with stack.client("acme:admin") as admin:
        with pytest.raises(errors.PermissionDenied) as refused:
            await EDITS[edit](admin, slug)
    assert refused.value.reason == "STDIO_NEEDS_OPERATOR"
    assert await stack.operator.get_toolkit("acme", slug) == before
    rows = [
        r for r in await stack.rows_where("method = :v", "admin/UpsertToolkit") if slug in str(r["request_payload"])
    ]
    assert rows[-1]["status"] == "permission_denied"


async def test_the_org_admin_keeps_the_orgs_own_fields_and_the_operator_keeps_the_rest(stack: Stack) -> None:
    await _stdio_toolkit(stack, "stdio-own-fields")
    async with stack.client("acme:admin") as admin:
        renamed = await admin.upsert_toolkit(
            "acme", "stdio-own-fields", name="Renamed", description="ours", visibility="private"
        )
    assert (renamed.name, renamed.description, renamed.visibility) == ("Renamed", "ours", "private")
    assert renamed.backend_transport == "stdio"
    published = await stack.operator.upsert_toolkit("acme", "stdio-own-fields", visibility="public")
    assert published.visibility == "public"


async def test_http_toolkits_stay_the_org_admins(stack: Stack) -> None:
    """The control: the same edit on an HTTP toolkit of the org is allowed."""
    async with stack.client("acme:admin") as admin:
        changed = await admin.upsert_toolkit("acme", "other", visibility="public")
        assert changed.visibility == "public"
        await admin.upsert_toolkit("acme", "other", visibility="private")


async def test_a_public_stdio_toolkits_owner_defaults_are_the_operators(stack: Stack) -> None:
    """While public, its catalogue and tool defaults are what every org gets: an org admin
    cannot loosen a tool the operator blocked for everyone."""
    slug = "stdio-public-defaults"
    await _stdio_toolkit(stack, slug)
    await stack.operator.sync_tools("acme", slug, await stack.upstream.catalogue())
    await stack.operator.upsert_toolkit("acme", slug, visibility="public")
    async with stack.client("acme:admin") as admin:
        for attempt in (
            admin.set_tool_default("acme", slug, "wipe", "always_allow"),
            admin.sync_tools("acme", slug, [{"name": "wipe", "default_permission": "always_allow"}]),
            admin.upsert_toolkit("acme", slug, new_tool_permission="always_allow"),
        ):
            with pytest.raises(errors.PermissionDenied):
                await attempt
    wipe = [t for t in await stack.operator.list_catalogue("acme", slug) if t.name == "wipe"]
    assert [t.default_permission for t in wipe] == [types_pb2.PERMISSION_BLOCKED]
    await stack.operator.upsert_toolkit("acme", slug, visibility="private")
    async with stack.client("acme:admin") as admin:  # private again: its own org's business
        await admin.set_tool_default("acme", slug, "wipe", "needs_approval")
