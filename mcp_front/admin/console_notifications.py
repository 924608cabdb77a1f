"""The console's notification channels page (org admins): where approvals are announced,
add, send a test, disable or enable, remove (after asking), and the delivery log.

Every change is a form POST with the session's CSRF token, answered by a redirect back to
the page with what happened in the address (so a reload never repeats an action); a
refused change (a bad URL, a duplicate name) comes back as the page's error line."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mcp_front.admin.inputs import Ident, OptionalProse
from mcp_front.admin.org_choice import choose_org
from mcp_front.admin.rest import AdminApi
from mcp_front.admin.templates import render, signed_in_as
from policy_service.client import PolicyClient

KINDS = {
    "webhook": "Webhook (signed JSON)",
    "slack": "Slack-compatible webhook",
    "email": "Email",
}
PAGE = "/console/notifications"


def _message(exc: HTTPException) -> str:
    detail = exc.detail
    return str(detail.get("message", "")) if isinstance(detail, dict) else str(detail)


def build_notification_pages(api: AdminApi) -> APIRouter:
    r = APIRouter()  # mounted under /console by build_settings_pages
    signed_in = api.auth.optional_caller

    def back(org: str, **shown: str) -> RedirectResponse:
        query = {k: v for k, v in ({"org": org} | shown).items() if v}
        return RedirectResponse(f"{PAGE}?{urlencode(query)}" if query else PAGE, status_code=303)

    @r.get("/notifications", response_class=HTMLResponse)
    async def channels_page(
        request: Request,
        org: Ident = "",
        channel: Ident = "",
        done: OptionalProse = "",
        error: OptionalProse = "",
    ) -> Response:
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse(f"/console/login?next={PAGE}", status_code=303)
        return await page(request, caller.csrf_token, org, channel, done, error)

    async def page(
        request: Request, csrf: str, org: str, channel: str, done: str, error: str, secret: str = ""
    ) -> Response:
        """The channels, the add form and the delivery log (of one channel, or all)."""
        chosen = await choose_org(api, request, org, csrf)
        me, orgs, org, no_org = chosen.me, chosen.orgs, chosen.org, chosen.missing
        listed = [] if no_org else await api.call(request, lambda c: c.list_notification_channels(org), form_csrf=csrf)
        shown_channel = channel if channel in {c.name for c in listed} else ""
        deliveries = (
            []
            if no_org
            else await api.call(
                request, lambda c: c.list_notification_deliveries(org, shown_channel, 50), form_csrf=csrf
            )
        )
        return render(
            "notifications.html",
            title="Notification channels",
            signed_in=signed_in_as(me),
            channels=listed,
            deliveries=deliveries,
            kinds=KINDS,
            csrf=csrf,
            orgs=orgs,
            org=org,
            channel=shown_channel,
            done=done,
            error=error,
            secret=secret,
        )

    @r.post("/notifications")
    async def add_channel(
        request: Request,
        name: Annotated[Ident, Form()],
        kind: Annotated[Literal["webhook", "slack", "email"], Form()],
        target: Annotated[str, Form(max_length=2048)],
        csrf: Annotated[Ident, Form()] = "",
        org: Annotated[Ident, Form()] = "",
    ) -> Response:
        try:
            created = await api.call(
                request, lambda c: c.create_notification_channel(org, name, kind, target.strip()), form_csrf=csrf
            )
        except HTTPException as exc:
            if exc.status_code in (401, 403):
                raise
            return back(org, error=f"Channel {name} was not added: {_message(exc)}")
        # The signing secret is shown once, in this answer (never in an address, which logs
        # and browser history keep); it is not stored, so no later visit can show it.
        done = f"Added {kind} channel {created.channel.name}."
        return await page(request, csrf, org, "", done, "", created.signing_secret)

    @r.post("/notifications/{name}/{action}")
    async def change_channel(
        request: Request,
        name: Ident,
        action: Literal["test", "disable", "enable", "remove"],
        csrf: Annotated[Ident, Form()] = "",
        org: Annotated[Ident, Form()] = "",
    ) -> Response:
        async def run(c: PolicyClient) -> str:
            if action == "test":
                queued = await c.test_notification_channel(org, name)
                return f"Test event queued for {queued.channel_name}: its delivery shows in the log below."
            if action == "remove":
                removed = await c.delete_notification_channel(org, name)
                return f"Removed {removed.kind} channel {removed.name}."
            changed = await c.set_notification_channel_disabled(org, name, action == "disable")
            if changed.disabled:
                return f"Disabled {changed.name}: it is sent nothing until you enable it."
            return f"Enabled {changed.name}."

        try:
            done = await api.call(request, run, form_csrf=csrf)
        except HTTPException as exc:
            if exc.status_code in (401, 403):
                raise
            return back(org, error=f"Could not {action} {name}: {_message(exc)}")
        return back(org, done=done, channel=name if action == "test" else "")

    @r.get("/notifications/{name}/remove", response_class=HTMLResponse)
    async def confirm_remove(request: Request, name: Ident, org: Ident = "") -> Response:
        """Removing deletes the channel's delivery log and secret: a page that asks first."""
        caller = signed_in(request)
        if caller is None:
            return RedirectResponse(f"/console/login?next={PAGE}", status_code=303)
        chosen = await choose_org(api, request, org)
        me, org = chosen.me, chosen.org
        listed = await api.call(request, lambda c: c.list_notification_channels(org))
        found = next((c for c in listed if c.name == name), None)
        if found is None:
            raise HTTPException(404, "no such notification channel")
        return render(
            "notification_remove.html",
            title="Remove notification channel",
            signed_in=signed_in_as(me),
            c=found,
            org=org,
            csrf=caller.csrf_token,
        )

    return r
