"""Admin verbs: orgs, keys, toolkits, tools and permissions. Each has --json."""

from __future__ import annotations

import json
from typing import Any

import typer

from monomcp_cli import domain_commands, notify_commands, people_commands
from monomcp_cli.admin_client import call
from monomcp_cli.output import console, emit
from policy_service.client import PolicyClient
from policy_service.toolkits.stdio_backend import StdioSpec

JSON = typer.Option(False, "--json", help="Machine-readable output.")
ORG = typer.Option("", "--org", help="Org slug (default: the credential's org).")
OWNED_TOOLKIT = typer.Argument(..., help="Toolkit slug (with --org) or ORG/TOOLKIT, e.g. seo or acme/seo")
ANY_TOOLKIT = typer.Argument(..., help="ORG/TOOLKIT of the toolkit's owner, e.g. acme/seo or mono/seo")
TOOL = typer.Argument(..., help="Tool name, e.g. publish_page")
PERMISSION = typer.Argument(..., help="always_allow, needs_approval or blocked")
ROLE = typer.Argument(..., help="Role in your org, e.g. admin or member")


def toolkit_ref(value: str) -> tuple[str, str]:
    """ORG/TOOLKIT as (owner org, slug). A bare slug raised ValueError's traceback: a rule is
    about a toolkit of any org (mono/seo is public), so the owner must be named."""
    owner, sep, slug = value.partition("/")
    if not sep or not owner or not slug or "/" in slug:
        raise typer.BadParameter(f"{value!r}: give the toolkit as ORG/TOOLKIT, e.g. acme/seo", param_hint="TOOLKIT")
    return owner, slug


def own_toolkit(value: str, org: str) -> tuple[str, str]:
    """`seo` with --org, or `acme/seo` (as the permissions verbs take it): (org, slug)."""
    if "/" not in value:
        return org, value
    owner, slug = toolkit_ref(value)
    if org and org != owner:
        raise typer.BadParameter(f"{value!r} is not a toolkit of --org {org}", param_hint="TOOLKIT")
    return owner, slug


def register(app: typer.Typer) -> None:
    orgs = typer.Typer(help="Organizations.", no_args_is_help=True)
    keys = typer.Typer(help="API keys.", no_args_is_help=True)
    toolkits = typer.Typer(help="Toolkits.", no_args_is_help=True)
    tools = typer.Typer(help="A toolkit's tool catalogue.", no_args_is_help=True)
    perms = typer.Typer(help="Org-wide defaults and role overrides.", no_args_is_help=True)
    for name, sub in (("orgs", orgs), ("keys", keys), ("toolkit", toolkits), ("tools", tools), ("permissions", perms)):
        app.add_typer(sub, name=name)
    people_commands.register(app)
    domain_commands.register(app)
    notify_commands.register(app)

    @orgs.command("list")
    def orgs_list(as_json: bool = JSON) -> None:
        """The orgs this credential sees (the operator sees all)."""
        emit(call(lambda c: c.list_orgs()), as_json, ["slug", "name", "created_at"])

    @orgs.command("create")
    def orgs_create(slug: str, name: str = typer.Option("", help="Display name"), as_json: bool = JSON) -> None:
        """Create an org (operator token only)."""
        emit(call(lambda c: c.create_org(slug, name)), as_json, ["slug", "name"])

    @keys.command("create")
    def keys_create(
        name: str,
        role: str = typer.Option("member", help="Role the key acts as: admin or member"),
        ttl: int = typer.Option(0, help="Seconds; 0 = never expires"),
        owner: str = typer.Option("", help="Email of the person the key belongs to (default: you)"),
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Create an API key; the secret is printed once."""
        issued = call(lambda c: c.create_api_key(org, name, role, ttl, owner))
        if as_json:
            emit(issued, True, [])
            return
        console.print(f"key id {issued.key.id} ({issued.key.role}) — secret, shown once:\n{issued.secret}")

    @keys.command("list")
    def keys_list(org: str = ORG, as_json: bool = JSON) -> None:
        """The org's API keys: owner, expiry, last use (never the secret)."""
        emit(
            call(lambda c: c.list_api_keys(org)),
            as_json,
            ["id", "name", "role", "owner_email", "created_at", "expires_at", "revoked_at", "last_used_at"],
        )

    @keys.command("revoke")
    def keys_revoke(key_id: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Revoke a key by its id (refused everywhere within a second)."""
        emit(call(lambda c: c.revoke_api_key(org, key_id)), as_json, ["id", "name", "revoked_at"])

    @toolkits.command("list")
    def toolkit_list(
        org: str = ORG, public: bool = typer.Option(False, help="Include public toolkits"), as_json: bool = JSON
    ) -> None:
        """The org's toolkits (and, with --public, every public one)."""
        emit(
            call(lambda c: c.list_toolkits(org, public)),
            as_json,
            ["org_slug", "slug", "name", "visibility", "backend_url", "tool_count"],
        )

    @toolkits.command("upsert")
    def toolkit_upsert(
        slug: str,
        name: str = typer.Option("", help="Display name (default: the slug)"),
        visibility: str = typer.Option("", help="private (your org only; the default) or public (every org)"),
        backend_url: str = typer.Option("", help="The backend's MCP endpoint, e.g. https://mcp.example.com/mcp"),
        description: str = typer.Option("", help="What the toolkit is for"),
        stdio_command: str = typer.Option("", help="Operator only: run this command as the MCP backend (stdio)."),
        stdio_arg: list[str] = typer.Option([], help="An argument of --stdio-command (repeat for each)."),
        stdio_env: list[str] = typer.Option([], help="KEY=VALUE for the stdio process (repeat for each)."),
        stdio_cwd: str = typer.Option("", help="Absolute working directory of the stdio process."),
        stdio_memory_mb: int = typer.Option(0, help="RLIMIT_AS of each stdio process in MiB (0 = none)."),
        stdio_cpu_seconds: int = typer.Option(0, help="RLIMIT_CPU of each stdio process in seconds (0 = none)."),
        stdio_pool_size: int = typer.Option(1, help="stdio processes per tenant (1-8)."),
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Create or update a toolkit (an HTTP backend URL, or an operator's stdio command)."""
        stdio = None
        if stdio_command:
            env = dict(item.split("=", 1) for item in stdio_env if "=" in item)
            if len(env) != len(stdio_env):
                raise typer.BadParameter("each --stdio-env must be KEY=VALUE", param_hint="--stdio-env")
            stdio = StdioSpec(
                stdio_command,
                tuple(stdio_arg),
                env,
                stdio_cwd,
                stdio_memory_mb,
                stdio_cpu_seconds,
                stdio_pool_size,
            )
        emit(
            call(
                lambda c: c.upsert_toolkit(
                    org,
                    slug,
                    name=name,
                    visibility=visibility,
                    backend_url=backend_url,
                    description=description,
                    backend_stdio=stdio,
                )
            ),
            as_json,
            ["org_slug", "slug", "name", "visibility", "backend_transport", "backend_url"],
        )

    @toolkits.command("sync")
    def toolkit_sync(
        slug: str,
        org: str = ORG,
        prune: bool = typer.Option(False, help="Also remove tools the backend no longer lists"),
        as_json: bool = JSON,
    ) -> None:
        """Fetch the backend's tools/list and store it as the toolkit's catalogue."""
        from mcp_front.backends.catalogue_sync import sync_catalogue
        from mcp_front.backends.upstream import UpstreamError
        from policy_service.config import Settings
        from policy_service.toolkits.egress import EgressPolicy

        egress = EgressPolicy.from_settings(Settings())

        async def run(c: PolicyClient) -> tuple[str, Any]:
            result = await sync_catalogue(c, org, slug, prune, egress)
            return (await c.get_toolkit(org, slug)).org_slug, result

        try:
            owner, result = call(run)
        except UpstreamError as exc:
            console.print(f"[red]error[/red] BACKEND_ERROR: {exc.public}")
            if "not allowed" in exc.public and not egress.allow_private:
                # The sync runs here, under this shell's egress settings, not the gateway's.
                console.print(
                    "A backend on loopback or a private network (such as `monomcp dev`'s demo backend) "
                    "needs MONOMCP_BACKEND_ALLOW_PRIVATE=true in this shell too."
                )
            raise typer.Exit(1) from None
        counts = {"added": result.added, "updated": result.updated, "removed": result.removed}
        if as_json:
            print(json.dumps({"toolkit": f"{owner}/{slug}", **counts}, indent=2))
        else:
            emit(result, False, list(counts), title=f"Synced {owner}/{slug}")

    @tools.command("list")
    def tools_list(toolkit: str = OWNED_TOOLKIT, org: str = ORG, as_json: bool = JSON) -> None:
        """A toolkit's tools with their owner's default permission."""
        org, slug = own_toolkit(toolkit, org)
        emit(call(lambda c: c.list_catalogue(org, slug)), as_json, ["name", "default_permission", "description"])

    @tools.command("set-default")
    def tools_set_default(
        toolkit: str = OWNED_TOOLKIT,
        tool: str = TOOL,
        permission: str = PERMISSION,
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Set the owner's default permission of a tool."""
        org, slug = own_toolkit(toolkit, org)
        emit(call(lambda c: c.set_tool_default(org, slug, tool, permission)), as_json, ["name", "default_permission"])

    @perms.command("list")
    def perms_list(org: str = ORG, as_json: bool = JSON) -> None:
        """Your org's defaults and role overrides (role blank: the org-wide default)."""
        emit(
            call(lambda c: c.list_permission_rules(org)),
            as_json,
            ["role", "toolkit_org_slug", "toolkit_slug", "tool", "permission"],
        )

    @perms.command("set-default")
    def perms_set_default(
        toolkit: str = ANY_TOOLKIT,
        tool: str = TOOL,
        permission: str = PERMISSION,
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Set your org's default for a tool (overrides the owner's default)."""
        tk_org, tk = toolkit_ref(toolkit)
        emit(
            call(lambda c: c.set_org_default(tk_org, tk, tool, permission, org)),
            as_json,
            ["toolkit_slug", "tool", "permission"],
        )

    @perms.command("clear-default")
    def perms_clear_default(toolkit: str = ANY_TOOLKIT, tool: str = TOOL, org: str = ORG) -> None:
        """Remove your org's default for a tool (the owner's default applies again)."""
        tk_org, tk = toolkit_ref(toolkit)
        console.print("removed" if call(lambda c: c.clear_org_default(tk_org, tk, tool, org)) else "no such rule")

    @perms.command("set-override")
    def perms_set_override(
        role: str = ROLE,
        toolkit: str = ANY_TOOLKIT,
        tool: str = TOOL,
        permission: str = PERMISSION,
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Set a role override (beats the org-wide default)."""
        tk_org, tk = toolkit_ref(toolkit)
        emit(
            call(lambda c: c.set_role_override(role, tk_org, tk, tool, permission, org)),
            as_json,
            ["role", "toolkit_slug", "tool", "permission"],
        )

    @perms.command("clear-override")
    def perms_clear_override(role: str = ROLE, toolkit: str = ANY_TOOLKIT, tool: str = TOOL, org: str = ORG) -> None:
        """Remove a role override (the org-wide default applies again)."""
        tk_org, tk = toolkit_ref(toolkit)
        console.print(
            "removed" if call(lambda c: c.clear_role_override(role, tk_org, tk, tool, org)) else "no such rule"
        )
