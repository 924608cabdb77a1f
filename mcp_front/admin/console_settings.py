"""Console pages for permissions (a tools × roles matrix over defaults and overrides) and
API keys (create with the secret shown once, list, revoke)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mcp_front.admin.auth import Caller
from mcp_front.admin.console_notifications import build_notification_pages
from mcp_front.admin.inputs import MAX_TTL_SECONDS, Ident, Name
from mcp_front.admin.org_choice import choose_org
from mcp_front.admin.rest import AdminApi
from mcp_front.admin.templates import render, signed_in_as
from policy_service.client import Permission, permission_of
from policy_service.wire_views import api_key_view

INHERIT = "inherit"  # a cell without a rule of its own
CHOICES: list[str] = [INHERIT, *Permission]
WORDS: dict[str, str] = {INHERIT: INHERIT, **{permission: permission.words for permission in Permission}}


def build_settings_pages(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/console")
    r.include_router(build_notification_pages(api))

    signed_in = api.auth.optional_caller

    @r.get("/permissions", response_class=HTMLResponse)
    async def permissions(request: Request, toolkit: Ident = "", saved: int | None = None, org: Ident = "") -> Response:
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse("/console/login?next=/console/permissions", status_code=303)
        picked = await choose_org(api, request, org)
        me, org = picked.me, picked.org
        toolkits = (
            [] if picked.missing else await api.call(request, lambda c: c.list_toolkits(org, include_public=True))
        )
        names = [f"{t.org_slug}/{t.slug}" for t in toolkits]
        chosen = toolkit if toolkit in names else (names[0] if names else "")
        rows: list[dict[str, object]] = []
        roles: list[str] = []
        owned = True
        if chosen:
            owner, slug = chosen.split("/", 1)
            owned = owner == (org or me.org_slug)
            tools = await api.call(request, lambda c: c.list_catalogue(owner, slug))
            roles = [role.name for role in await api.call(request, lambda c: c.list_roles(org))]
            current = await _rules(request, org, owner, slug)
            for t in tools:
                owner_default = permission_of(t.default_permission) or Permission.NEEDS_APPROVAL
                ceiling = not owned and owner_default is Permission.BLOCKED
                org_default = current.get((t.name, ""), INHERIT)
                cells = [{"role": "", "label": "Org default", "current": org_default, "effective": ""}]
                for role in roles:
                    rule = current.get((t.name, role), INHERIT)
                    effective = (
                        Permission.BLOCKED
                        if ceiling
                        else next(p for p in (rule, org_default, owner_default) if p != INHERIT)
                    )
                    cells.append({"role": role, "label": f"Role: {role}", "current": rule, "effective": effective})
                rows.append({"tool": t.name, "owner": owner_default, "ceiling": ceiling, "cells": cells})
        live = None if picked.missing else (await api.call(request, lambda c: c.export_policy(org))).live
        return render(
            "permissions.html",
            title="Permissions",
            live_policy=live if live is not None and live.version else None,
            orgs=picked.orgs,
            org=org,
            signed_in=signed_in_as(me),
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

    async def _rules(
        request: Request, org: str, owner: str, slug: str, csrf: str | None = None
    ) -> dict[tuple[str, str], str]:
        rules = await api.call(request, lambda c: c.list_permission_rules(org), form_csrf=csrf)
        return {
            (rule.tool, rule.role): permission_of(rule.permission) or INHERIT
            for rule in rules
            if rule.toolkit_org_slug == owner and rule.toolkit_slug == slug
        }

    @r.post("/permissions")
    async def save_permissions(request: Request) -> Response:
        """The whole matrix in one form: only the cells that changed become RPCs."""
        form = await request.form()
        csrf, toolkit, org = (str(form.get(k, "")) for k in ("csrf", "toolkit", "org"))
        if "/" not in toolkit or len(form) > 5000:
            raise HTTPException(400, "bad toolkit")
        if len(org) > 63 or not org.isprintable():
            raise HTTPException(400, "bad org")
        owner, slug = toolkit.split("/", 1)
        current = await _rules(request, org, owner, slug, csrf)
        changes = 0
        for key, value in form.multi_items():
            if not key.startswith("p:") or not isinstance(value, str):
                continue
            _, role, tool = key.split(":", 2)
            if value not in CHOICES:
                raise HTTPException(400, f"unknown permission {value!r}")
            if value == current.get((tool, role), INHERIT):
                continue
            await _apply(request, org, owner, slug, tool, role, value, csrf)
            changes += 1
        shown = {"toolkit": toolkit, "saved": changes} | ({"org": org} if org else {})
        return RedirectResponse(f"/console/permissions?{urlencode(shown)}", 303)

    async def _apply(  # one rule change: where, which cell, what, and the form's token
        request: Request, org: str, owner: str, slug: str, tool: str, role: str, value: str, csrf: str
    ) -> None:
        if value == INHERIT:
            if role:
                await api.call(request, lambda c: c.clear_role_override(role, owner, slug, tool, org), form_csrf=csrf)
            else:
                await api.call(request, lambda c: c.clear_org_default(owner, slug, tool, org), form_csrf=csrf)
        elif role:
            await api.call(request, lambda c: c.set_role_override(role, owner, slug, tool, value, org), form_csrf=csrf)
        else:
            await api.call(request, lambda c: c.set_org_default(owner, slug, tool, value, org), form_csrf=csrf)

    @r.get("/keys", response_class=HTMLResponse)
    async def keys(request: Request, org: Ident = "") -> Response:
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse("/console/login?next=/console/keys", status_code=303)
        return await _keys_page(request, caller, org, "")

    async def _keys_page(request: Request, caller: Caller, org: str, secret: str, csrf: str | None = None) -> Response:
        """The key list and the create form; `secret` is a key just made, shown this once."""
        picked = await choose_org(api, request, org, csrf)
        me, org = picked.me, picked.org
        listed = [] if picked.missing else await api.call(request, lambda c: c.list_api_keys(org), form_csrf=csrf)
        roles = (
            []
            if picked.missing
            else [role.name for role in await api.call(request, lambda c: c.list_roles(org), form_csrf=csrf)]
        )
        shown = [api_key_view(k) for k in listed]
        return render(
            "keys.html",
            title="API keys",
            signed_in=signed_in_as(me),
            keys=shown,
            roles=roles,
            csrf=caller.csrf_token,
            secret=secret,
            max_days=MAX_TTL_SECONDS // 86_400,
            orgs=picked.orgs,
            org=org,
        )

    @r.post("/keys", response_class=HTMLResponse)
    async def create_key(
        request: Request,
        name: Annotated[Name, Form()],
        role: Annotated[Ident, Form()] = "member",
        ttl_days: Annotated[int, Form(ge=0, le=MAX_TTL_SECONDS // 86_400)] = 0,
        csrf: Annotated[Ident, Form()] = "",
        org: Annotated[Ident, Form()] = "",
    ) -> Response:
        caller = api.auth.caller(request, form_csrf=csrf)
        ttl = ttl_days * 86_400
        issued = await api.call(request, lambda c: c.create_api_key(org, name, role, ttl), form_csrf=csrf)
        return await _keys_page(request, caller, org, issued.secret, csrf)

    @r.get("/keys/{key_id}/revoke", response_class=HTMLResponse)
    async def confirm_revoke(request: Request, key_id: Ident, org: Ident = "") -> Response:
        """Revoking cannot be undone: a page that asks first (no script needed)."""
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse("/console/login?next=/console/keys", status_code=303)
        picked = await choose_org(api, request, org)
        me, org = picked.me, picked.org
        listed = await api.call(request, lambda c: c.list_api_keys(org))
        key = next((k for k in listed if k.id == key_id), None)
        if key is None:
            raise HTTPException(404, "no such key")
        return render(
            "key_revoke.html",
            title="Revoke API key",
            signed_in=signed_in_as(me),
            key=key,
            org=org,
            csrf=caller.csrf_token,
        )

    @r.post("/keys/{key_id}/revoke")
    async def revoke_key(
        request: Request, key_id: Ident, csrf: Annotated[Ident, Form()] = "", org: Annotated[Ident, Form()] = ""
    ) -> Response:
        await api.call(request, lambda c: c.revoke_api_key(org, key_id), form_csrf=csrf)
        return RedirectResponse(f"/console/keys?{urlencode({'org': org})}" if org else "/console/keys", status_code=303)

    return r
