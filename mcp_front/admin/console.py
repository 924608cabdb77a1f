"""The web console (/console): the live approval queue, one approval's page (the URL
clients are sent to), and the audit viewer; sign-in lives in sign_in.py. Server-rendered;
the only script (static/queue.js) polls the queue and renders rows with textContent, so
payload text can never become markup."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from mcp_front.admin.inputs import AuditSource, Ident, OptionalProse, PageToken
from mcp_front.admin.org_choice import whoami
from mcp_front.admin.requester_view import build_requester_view, sign_in_to_view
from mcp_front.admin.rest import AdminApi
from mcp_front.admin.sign_in import build_sign_in
from mcp_front.admin.templates import render, signed_in_as, when
from policy_service.audit_changes import change_of, field_changes, summary
from policy_service.client import Approval
from policy_service.wire_enums import message_to_dict
from policy_service.wire_views import ApprovalView, approval_view, audit_record_view


def _d(message: Any) -> dict[str, Any]:
    return message_to_dict(message)


def build_console(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/console")
    r.include_router(build_sign_in(api))
    r.include_router(build_requester_view(api))

    signed_in = api.auth.optional_caller

    def to_login(request: Request) -> RedirectResponse:
        return RedirectResponse(f"/console/login?next={request.url.path}", status_code=303)

    @r.get("", response_class=HTMLResponse)
    @r.get("/", response_class=HTMLResponse)
    async def home() -> Response:
        return RedirectResponse("/console/approvals", status_code=303)

    @r.get("/approvals", response_class=HTMLResponse)
    async def queue(request: Request, decided: Ident = "", action: Ident = "", org: Ident = "") -> Response:
        caller = signed_in(request)
        if caller is None:
            return to_login(request)
        me = await whoami(api, request)
        orgs: list[str] = []
        if me.kind == "operator":  # the operator belongs to no org: they pick one
            orgs = [o.slug for o in await api.call(request, lambda c: c.list_orgs())]
            org = org if org in orgs else (orgs[0] if orgs else "")
        else:
            org = ""
        no_org = me.kind == "operator" and not org  # an operator of a gateway without orgs
        pending = None if no_org else await api.call(request, lambda c: c.list_approvals(org, "pending", 100))
        banner = ""
        if decided and action in ("approve", "deny"):
            banner = f"{'Approved' if action == 'approve' else 'Denied'} request {decided}."
        return render(
            "queue.html",
            title="Approval queue",
            signed_in=signed_in_as(me),
            approvals=[approval_view(a) for a in pending.approvals] if pending is not None else [],
            csrf=caller.csrf_token,
            banner=banner,
            orgs=orgs,
            org=org,
        )

    @r.get("/approvals/events")
    async def queue_events(request: Request, org: Ident = "") -> Response:
        """The queue's changes as server-sent events (one JSON object per approval change)."""
        caller = api.auth.caller(request)
        await api.call(request, lambda c: c.list_approvals(org, "pending", 1))  # refuse non-admins before streaming

        async def events() -> AsyncIterator[str]:
            changes: asyncio.Queue[Approval] = asyncio.Queue(maxsize=1000)

            async def pump() -> None:
                async with api.client(request, caller.credential, "console") as client:
                    async for approval in client.watch_approvals(org):
                        await changes.put(approval)

            pumping = asyncio.get_running_loop().create_task(pump())
            pumping.add_done_callback(lambda t: t.cancelled() or t.exception())  # an ended watch ends the stream
            try:
                yield "retry: 3000\n\n"
                while True:
                    getting = asyncio.ensure_future(changes.get())
                    await asyncio.wait({getting, pumping}, timeout=_HEARTBEAT_SECONDS, return_when="FIRST_COMPLETED")
                    if not getting.done():
                        getting.cancel()
                        if pumping.done():
                            return  # the watch ended (session revoked, policy service gone): the browser retries
                        yield ": keepalive\n\n"  # also finds out when the browser has gone
                        continue
                    yield f"data: {json.dumps(_event(approval_view(getting.result())))}\n\n"
            finally:
                pumping.cancel()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    @r.get("/approvals/{approval_id}", response_class=HTMLResponse)
    async def approval_page(request: Request, approval_id: Ident) -> Response:
        caller = signed_in(request)
        if caller is None:  # most often the requester, following the link in their result
            return sign_in_to_view(api, approval_id)
        a = approval_view(await api.call(request, lambda c: c.get_approval(approval_id)))
        me = await whoami(api, request)
        return render(
            "approval.html",
            title=f"Approval request: {a.tool}",
            signed_in=signed_in_as(me),
            a=a,
            status=a.status or "unknown",
            arguments=_pretty(a.arguments_json),
            csrf=caller.csrf_token,
        )

    @r.post("/approvals/{approval_id}/decide")
    async def decide(
        request: Request,
        approval_id: Ident,
        action: Annotated[Literal["approve", "deny"], Form()],
        csrf: Annotated[Ident, Form()] = "",
        reason: Annotated[OptionalProse, Form()] = "",
        back: Annotated[Literal["page", "queue"], Form()] = "page",
        org: Annotated[Ident, Form()] = "",
    ) -> Response:
        await api.call(request, lambda c: c.decide_approval(approval_id, action == "approve", reason), form_csrf=csrf)
        if back == "queue":  # the queue shows a banner saying what was done
            where = urlencode({"decided": approval_id, "action": action} | ({"org": org} if org else {}))
            return RedirectResponse(f"/console/approvals?{where}", status_code=303)
        return RedirectResponse(f"/console/approvals/{approval_id}", status_code=303)

    @r.get("/audit", response_class=HTMLResponse)
    async def audit(
        request: Request,
        tool: Ident = "",
        status: Ident = "",
        toolkit: Ident = "",
        actor_id: Ident = "",
        source: AuditSource = "",
        org: Ident = "",
        since: Ident = "",
        until: Ident = "",
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
        page_token: PageToken = "",
        newer: Annotated[str, Query(max_length=2000, pattern=r"^[0-9,]*$")] = "",
    ) -> Response:
        caller = signed_in(request)
        if caller is None:
            return to_login(request)
        try:
            since_at, until_at = _local_time(since), _local_time(until)
        except ValueError:
            raise HTTPException(400, "From and To must be dates and times") from None
        owner, _, slug = toolkit.partition("/")
        me = await whoami(api, request)
        orgs: list[str] = []
        if me.kind == "operator":  # the operator's audit spans every org unless they pick one
            orgs = [o.slug for o in await api.call(request, lambda c: c.list_orgs())]
            org = org if org in orgs else ""
        else:
            org = ""
        result = await api.call(
            request,
            lambda c: c.query_audit(
                org,
                tool=tool,
                status=status,
                toolkit=slug or owner,
                actor_id=actor_id,
                source=source,
                since=since_at,
                until=until_at,
                page_size=page_size,
                page_token=page_token,
            ),
        )
        toolkits: list[str] = []
        actors: list[tuple[str, str]] = []
        if me.org_slug or org:  # across every org (the operator's default) there is no one org's list
            listed = await api.call(request, lambda c: c.list_toolkits(org, True))
            toolkits = [f"{t.org_slug}/{t.slug}" for t in listed]
            actors = [(k.id, f"key {k.name}") for k in await api.call(request, lambda c: c.list_api_keys(org))]
            people = await api.call(request, lambda c: c.list_people(org))
            actors += [(p.user_id, p.display_name or p.email) for p in people]
        filters: dict[str, Any] = {"tool": tool, "status": status, "toolkit": toolkit, "actor_id": actor_id}
        filters |= {"source": source, "org": org}
        filters |= {"since": since, "until": until, "page_size": page_size}
        trail = [t for t in newer.split(",") if t] if newer else []

        def link(token: str, back: list[str]) -> str:
            shown = {k: v for k, v in filters.items() if v and k != "page_size"} | {"page_size": page_size}
            return "/console/audit?" + urlencode(shown | {"page_token": token, "newer": ",".join(back)})

        older = link(result.next_page_token, [*trail, page_token or "0"]) if result.next_page_token else ""
        previous = None
        if page_token:
            back_to = trail[-1] if trail else "0"
            previous = link("" if back_to == "0" else back_to, trail[:-1])
        return render(
            "audit.html",
            title="Audit log",
            signed_in=signed_in_as(me),
            records=[audit_record_view(r) for r in result.records],
            f=filters,
            toolkits=toolkits,
            statuses=AUDIT_STATUSES,
            sources=SOURCE_WORDS,
            orgs=orgs,
            actors=actors,
            older=older,
            newer=previous,
            duration=duration,
        )

    @r.get("/audit/{call_id}", response_class=HTMLResponse)
    async def audit_detail(request: Request, call_id: Ident) -> Response:
        if signed_in(request) is None:
            return to_login(request)
        result = await api.call(request, lambda c: c.query_audit(call_id=call_id, page_size=1))
        if not result.records:
            raise HTTPException(404, "no such call")
        me = await whoami(api, request)
        x = audit_record_view(result.records[0])
        change = change_of(x.method, x.response_json)
        return render(
            "audit_detail.html",
            change_summary=summary(change) if change is not None else "",
            changes=field_changes(change) if change is not None else [],
            title=f"Call: {x.method} {x.tool}".strip(),
            signed_in=signed_in_as(me),
            x=x,
            redacted=x.redacted_paths,
            request_text=_pretty(x.request_json),
            response_text=_pretty(x.response_json),
            duration=duration,
        )

    return r


_HEARTBEAT_SECONDS = 15.0
# The source filter's choices, as people read them.
SOURCE_WORDS = {
    "mcp": "MCP client calls",
    "api": "REST API",
    "console": "console",
    "cli": "CLI",
    "grpc": "gRPC",
    "system": "the gateway itself",
}
AUDIT_STATUSES = (
    "ok",
    "error",
    "started",
    "pending_approval",
    "denied",
    "blocked",
    "invalid",
    "unauthenticated",
    "not_found",
    "rate_limited",
    "refused",
    "abandoned",
)


def _local_time(text: str) -> datetime | None:
    """A datetime-local value (UTC, as the page says), or None when empty."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def duration(ms: float) -> str:
    """`0.4 ms`, `12 ms`, `3.2 s`: rounded to what a person compares."""
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _event(a: ApprovalView) -> dict[str, str]:
    """What the queue's script needs to show (or drop) one row."""
    shown = when(a.created_at)
    return {
        "id": a.id,
        "status": a.status,
        "tool": a.tool,
        "toolkit": f"{a.toolkit_org_slug}/{a.toolkit_slug}",
        "arguments": a.arguments_json,
        "requested_by": a.requester.display,
        "created_at": shown["iso"],
        "created_text": f"{shown['text']} ({shown['age']})",
    }


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
