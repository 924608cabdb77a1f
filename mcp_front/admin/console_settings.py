"""Console pages for permissions (a tools × roles matrix over defaults and overrides) and
API keys (create with the secret shown once, list, revoke)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mcp_front.admin.auth import Caller
from mcp_front.admin.inputs import MAX_TTL_SECONDS, Ident, Name
from mcp_front.admin.pages import e, page, table
from mcp_front.admin.rest import AdminApi
from mcp_front.admin.templates import render
from policy_service.client import PERMISSION_NAMES

CHOICES = ["inherit", "always_allow", "needs_approval", "blocked"]
WORDS = {"inherit": "inherit", "always_allow": "always allow", "needs_approval": "needs approval", "blocked": "blocked"}


def build_settings_pages(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/console")

    signed_in = api.auth.optional_caller

    @r.get("/permissions", response_class=HTMLResponse)
    async def permissions(request: Request, toolkit: Ident = "", saved: int | None = None) -> Response:
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse("/console/login?next=/console/permissions", status_code=303)
        me = await api.call(request, lambda c: c.whoami())
        toolkits = await api.call(request, lambda c: c.list_toolkits("", include_public=True))
        names = [f"{t.org_slug}/{t.slug}" for t in toolkits]
        chosen = toolkit if toolkit in names else (names[0] if names else "")
        rows: list[dict[str, object]] = []
        roles: list[str] = []
        owned = True
        if chosen:
            owner, slug = chosen.split("/", 1)
            owned = owner == me.org_slug
            tools = await api.call(request, lambda c: c.list_catalogue(owner, slug))
            roles = [role.name for role in await api.call(request, lambda c: c.list_roles())]
            current = await _rules(request, owner, slug)
            for t in tools:
                owner_default = PERMISSION_NAMES.get(t.default_permission, "needs_approval")
                ceiling = not owned and owner_default == "blocked"
                org_default = current.get((t.name, ""), "inherit")
                cells = [{"role": "", "label": "Org default", "current": org_default, "effective": ""}]
                for role in roles:
                    rule = current.get((t.name, role), "inherit")
                    effective = (
                        "blocked" if ceiling else next(p for p in (rule, org_default, owner_default) if p != "inherit")
                    )
                    cells.append({"role": role, "label": f"Role: {role}", "current": rule, "effective": effective})
                rows.append({"tool": t.name, "owner": owner_default, "ceiling": ceiling, "cells": cells})
        live = (await api.call(request, lambda c: c.export_policy())).live
        return render(
            "permissions.html",
            title="Permissions",
            live_policy=live if live.version else None,
            signed_in=f"{me.display} ({me.org_slug or 'operator'}, {me.role or me.kind})",
            toolkits=names,
            chosen=chosen,
            rows=rows,
            roles=roles,
            owned=owned,
            choices=CHOICES,
            words=WORDS,
            csrf=caller.csrf_token,
            saved=saved,
        )

    async def _rules(request: Request, owner: str, slug: str, csrf: str | None = None) -> dict[tuple[str, str], str]:
        rules = await api.call(request, lambda c: c.list_permission_rules(), form_csrf=csrf)
        return {
            (rule.tool, rule.role): PERMISSION_NAMES.get(rule.permission, "inherit")
            for rule in rules
            if rule.toolkit_org_slug == owner and rule.toolkit_slug == slug
        }

    @r.post("/permissions")
    async def save_permissions(request: Request) -> Response:
        """The whole matrix in one form: only the cells that changed become RPCs."""
        form = await request.form()
        csrf, toolkit = str(form.get("csrf", "")), str(form.get("toolkit", ""))
        if "/" not in toolkit or len(form) > 5000:
            raise HTTPException(400, "bad toolkit")
        owner, slug = toolkit.split("/", 1)
        current = await _rules(request, owner, slug, csrf)
        changes = 0
        for key, value in form.multi_items():
            if not key.startswith("p:") or not isinstance(value, str):
                continue
            _, role, tool = key.split(":", 2)
            if value not in CHOICES:
                raise HTTPException(400, f"unknown permission {value!r}")
            if value == current.get((tool, role), "inherit"):
                continue
            await _apply(request, owner, slug, tool, role, value, csrf)
            changes += 1
        return RedirectResponse(f"/console/permissions?{urlencode({'toolkit': toolkit, 'saved': changes})}", 303)

    async def _apply(request: Request, owner: str, slug: str, tool: str, role: str, value: str, csrf: str) -> None:
        if value == "inherit":
            if role:
                await api.call(request, lambda c: c.clear_role_override(role, owner, slug, tool), form_csrf=csrf)
            else:
                await api.call(request, lambda c: c.clear_org_default(owner, slug, tool), form_csrf=csrf)
        elif role:
            await api.call(request, lambda c: c.set_role_override(role, owner, slug, tool, value), form_csrf=csrf)
        else:
            await api.call(request, lambda c: c.set_org_default(owner, slug, tool, value), form_csrf=csrf)

    @r.get("/keys", response_class=HTMLResponse)
    async def keys(request: Request) -> Response:
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse("/console/login?next=/console/keys", status_code=303)
        return HTMLResponse(page("API keys", await _keys_body(request, caller, "")))

    async def _keys_body(request: Request, caller: Caller, notice: str, csrf: str | None = None) -> str:
        listed = await api.call(request, lambda c: c.list_api_keys(), form_csrf=csrf)
        roles = [role.name for role in await api.call(request, lambda c: c.list_roles(), form_csrf=csrf)]
        rows = [
            [
                e(k.id),
                e(k.name),
                e(k.role),
                e(k.created_at.ToJsonString()),
                e(k.expires_at.ToJsonString()) if k.HasField("expires_at") else "never",
                e(k.last_used_at.ToJsonString()) if k.HasField("last_used_at") else "",
                "revoked"
                if k.HasField("revoked_at")
                else f'<a class="btn no" href="/console/keys/{e(k.id)}/revoke">Revoke…</a>',
            ]
            for k in listed
        ]
        role_options = "".join(f"<option{' selected' if r == 'member' else ''}>{e(r)}</option>" for r in roles)
        create = (
            f'<form method="post" action="/console/keys" class="card inline">'
            f'<input type="hidden" name="csrf" value="{e(caller.csrf_token)}">'
            '<label>Name <input name="name" required maxlength="200"></label>'
            f'<label>Role <select name="role">{role_options}</select></label>'
            "<label>Expires after (days, 0 = never) "
            f'<input name="ttl_days" type="number" min="0" max="{MAX_TTL_SECONDS // 86_400}" value="90"></label>'
            '<button class="btn ok">Create key</button></form>'
        )
        return notice + create + table(["Id", "Name", "Role", "Created", "Expires", "Last used", ""], rows)

    @r.post("/keys", response_class=HTMLResponse)
    async def create_key(
        request: Request,
        name: Annotated[Name, Form()],
        role: Annotated[Ident, Form()] = "member",
        ttl_days: Annotated[int, Form(ge=0, le=MAX_TTL_SECONDS // 86_400)] = 0,
        csrf: Annotated[Ident, Form()] = "",
    ) -> Response:
        caller = api.auth.caller(request, form_csrf=csrf)
        ttl = ttl_days * 86_400
        issued = await api.call(request, lambda c: c.create_api_key("", name, role, ttl), form_csrf=csrf)
        notice = (
            '<div class="card" role="status"><strong>Copy this key now; it is not shown again:</strong>'
            f"<pre>{e(issued.secret)}</pre></div>"
        )
        return HTMLResponse(page("API keys", await _keys_body(request, caller, notice, csrf)))

    @r.get("/keys/{key_id}/revoke", response_class=HTMLResponse)
    async def confirm_revoke(request: Request, key_id: Ident) -> Response:
        """Revoking cannot be undone: a page that asks first (no script needed)."""
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse("/console/login?next=/console/keys", status_code=303)
        listed = await api.call(request, lambda c: c.list_api_keys())
        key = next((k for k in listed if k.id == key_id), None)
        if key is None:
            raise HTTPException(404, "no such key")
        body = (
            f"<p>Revoke the key <strong>{e(key.name)}</strong> (role {e(key.role)}, id <code>{e(key.id)}</code>)? "
            "Everything using it is refused within a second; this cannot be undone.</p>"
            f'<form method="post" action="/console/keys/{e(key.id)}/revoke" class="inline">'
            f'<input type="hidden" name="csrf" value="{e(caller.csrf_token)}">'
            '<button class="btn no">Revoke this key</button></form> <a class="btn" href="/console/keys">Cancel</a>'
        )
        return HTMLResponse(page("Revoke API key", body))

    @r.post("/keys/{key_id}/revoke")
    async def revoke_key(request: Request, key_id: Ident, csrf: Annotated[Ident, Form()] = "") -> Response:
        await api.call(request, lambda c: c.revoke_api_key("", key_id), form_csrf=csrf)
        return RedirectResponse("/console/keys", status_code=303)

    return r
