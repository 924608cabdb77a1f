"""The web console (/console): sign in, the live approval queue, one approval's page (the
URL clients are sent to), and the audit viewer. Server-rendered; the only script polls
the queue and renders rows with textContent, so payload text can never become markup."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from google.protobuf.json_format import MessageToDict

from mcp_front.admin.auth import COOKIE, SESSION_SECONDS
from mcp_front.admin.pages import decide_forms, e, page, table
from mcp_front.admin.rest import AdminApi
from policy_service.client import APPROVAL_STATUS_NAMES

QUEUE_SCRIPT = """
<script>
(function(){
  const body = document.getElementById('queue');
  const csrf = body.dataset.csrf;
  function cell(text){ const td=document.createElement('td'); td.textContent=text; return td; }
  function button(label, cls, onClick){ const b=document.createElement('button'); b.textContent=label;
    b.className='btn '+cls; b.addEventListener('click', onClick); return b; }
  async function decide(id, approve){
    let url='/api/v1/approvals/'+encodeURIComponent(id)+(approve?'/approve':'/deny'); let opts={method:'POST',
      headers:{'X-CSRF-Token':csrf,'Content-Type':'application/json'}};
    if(!approve){ const reason=prompt('Reason for denial'); if(!reason) return; opts.body=JSON.stringify({reason}); }
    const r=await fetch(url,opts); if(!r.ok){ alert('Failed: '+r.status); } refresh();
  }
  async function refresh(){
    const r=await fetch('/api/v1/approvals?status=pending'); if(!r.ok) return;
    const data=await r.json(); body.replaceChildren();
    for(const a of (data.approvals||[])){
      const tr=document.createElement('tr'); tr.dataset.id=a.id;
      const link=document.createElement('a'); link.href='/console/approvals/'+encodeURIComponent(a.id);
      link.textContent=a.tool; const tool=document.createElement('td'); tool.appendChild(link); tr.appendChild(tool);
      tr.appendChild(cell(a.toolkit_org_slug+'/'+a.toolkit_slug)); tr.appendChild(cell(a.arguments_json||''));
      tr.appendChild(cell((a.requester||{}).display||'')); tr.appendChild(cell(a.created_at||''));
      const act=document.createElement('td'); act.appendChild(button('Approve','ok',()=>decide(a.id,true)));
      act.appendChild(document.createTextNode(' ')); act.appendChild(button('Deny','no',()=>decide(a.id,false)));
      tr.appendChild(act); body.appendChild(tr);
    }
    document.getElementById('count').textContent=(data.approvals||[]).length;
  }
  setInterval(refresh, 2000);
})();
</script>
"""


def _d(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def build_console(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/console")

    signed_in = api.auth.optional_caller

    def to_login(request: Request) -> RedirectResponse:
        return RedirectResponse(f"/console/login?next={request.url.path}", status_code=303)

    @r.get("", response_class=HTMLResponse)
    @r.get("/", response_class=HTMLResponse)
    async def home() -> Response:
        return RedirectResponse("/console/approvals", status_code=303)

    @r.get("/login", response_class=HTMLResponse)
    async def login_form(next: str = "/console/approvals", error: str = "") -> HTMLResponse:
        target = next if next.startswith("/console") else "/console/approvals"
        message = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
        body = (
            f'{message}<form method="post" action="/console/login" class="card">'
            f'<input type="hidden" name="next" value="{e(target)}">'
            '<label>Admin API key or JWT<br><input type="password" name="credential" size="70" required '
            'autocomplete="off"></label><p><button class="btn ok">Sign in</button></p></form>'
        )
        return HTMLResponse(page("Sign in", body, signed_in=False))

    @r.post("/login")
    async def login(credential: str = Form(...), next: str = Form("/console/approvals")) -> Response:
        from policy_service import errors
        from policy_service.client import PolicyClient

        async with PolicyClient(api.addr, credential.strip(), api.timeout) as client:
            try:
                me = await client.whoami()
            except errors.PolicyError:
                return RedirectResponse("/console/login?error=Invalid+credential", status_code=303)
        if me.kind != "operator" and me.role != "admin":
            return RedirectResponse("/console/login?error=An+org+admin+credential+is+needed", status_code=303)
        target = next if next.startswith("/console") else "/console/approvals"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            api.auth.session_cookie(credential.strip()),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=api.auth.secure_cookies,
            path="/",
        )
        return response

    @r.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @r.get("/approvals", response_class=HTMLResponse)
    async def queue(request: Request) -> Response:
        caller = signed_in(request)
        if caller is None:
            return to_login(request)
        pending = await api.call(request, lambda c: c.list_approvals("", "pending", 100))
        rows = [
            [
                f'<a href="/console/approvals/{e(a.id)}">{e(a.tool)}</a>',
                e(f"{a.toolkit_org_slug}/{a.toolkit_slug}"),
                e(a.arguments_json),
                e(a.requester.display),
                e(a.created_at.ToJsonString()),
                decide_forms(a.id, caller.csrf_token),
            ]
            for a in pending.approvals
        ]
        body = (
            f'<p>Pending requests: <span id="count">{len(rows)}</span> <span class="muted">(updates live)</span></p>'
            + table(
                ["Tool", "Toolkit", "Arguments", "Requested by", "Requested at", "Decision"], rows, "queue"
            ).replace('<tbody id="queue">', f'<tbody id="queue" data-csrf="{e(caller.csrf_token)}">')
            + QUEUE_SCRIPT
        )
        return HTMLResponse(page("Approval queue", body))

    @r.get("/approvals/{approval_id}", response_class=HTMLResponse)
    async def approval_page(request: Request, approval_id: str) -> Response:
        caller = signed_in(request)
        if caller is None:
            return to_login(request)
        a = await api.call(request, lambda c: c.get_approval(approval_id))
        status = APPROVAL_STATUS_NAMES.get(a.status, "unknown")
        facts = [
            ("Status", f'<span class="status">{e(status)}</span>'),
            ("Tool", e(a.tool)),
            ("Toolkit", e(f"{a.toolkit_org_slug}/{a.toolkit_slug}")),
            ("Requested by", e(f"{a.requester.display} ({a.requester.kind}, role {a.requester.role})")),
            ("Requested at", e(a.created_at.ToJsonString())),
            ("Expires", e(a.expires_at.ToJsonString())),
            ("Decided by", e(a.decided_by)),
            ("Reason", e(a.reason)),
            ("Arguments SHA-256", e(a.arguments_sha256)),
        ]
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
        try:
            pretty = json.dumps(json.loads(a.arguments_json), indent=2, ensure_ascii=False)
        except ValueError:
            pretty = a.arguments_json
        actions = decide_forms(a.id, caller.csrf_token) if status == "pending" else ""
        body = f'<table class="card">{rows}</table><h2>Arguments</h2><pre>{e(pretty)}</pre>{actions}'
        return HTMLResponse(page(f"Approval {a.id}", body))

    @r.post("/approvals/{approval_id}/decide")
    async def decide(
        request: Request, approval_id: str, action: str = Form(...), csrf: str = Form(""), reason: str = Form("")
    ) -> Response:
        if action not in ("approve", "deny"):
            raise HTTPException(400, "action must be approve or deny")
        await api.call(request, lambda c: c.decide_approval(approval_id, action == "approve", reason), form_csrf=csrf)
        return RedirectResponse(f"/console/approvals/{approval_id}", status_code=303)

    @r.get("/audit", response_class=HTMLResponse)
    async def audit(
        request: Request, tool: str = "", status: str = "", toolkit: str = "", page_token: str = ""
    ) -> Response:
        if signed_in(request) is None:
            return to_login(request)
        result = await api.call(
            request,
            lambda c: c.query_audit(tool=tool, status=status, toolkit=toolkit, page_size=50, page_token=page_token),
        )
        rows = [
            [
                f'<a href="/console/audit/{e(x.call_id)}">{e(x.created_at.ToJsonString())}</a>',
                e(x.method),
                e(f"{x.toolkit_org_slug}/{x.toolkit_slug}"),
                e(x.tool),
                e(x.actor_display),
                e(x.decision),
                f'<span class="status">{e(x.status)}</span>',
                e(f"{x.duration_ms:.1f}"),
            ]
            for x in result.records
        ]
        filters = (
            '<form method="get" class="card inline">'
            f'<label>Tool <input name="tool" value="{e(tool)}"></label>'
            f'<label>Toolkit <input name="toolkit" value="{e(toolkit)}"></label>'
            f'<label>Status <input name="status" value="{e(status)}"></label>'
            '<button class="btn ok">Filter</button></form>'
        )
        more = (
            f'<p><a href="/console/audit?tool={e(tool)}&status={e(status)}&toolkit={e(toolkit)}'
            f'&page_token={e(result.next_page_token)}">Older →</a></p>'
            if result.next_page_token
            else ""
        )
        body = filters + table(["Time", "Method", "Toolkit", "Tool", "Actor", "Decision", "Status", "ms"], rows) + more
        return HTMLResponse(page("Audit log", body))

    @r.get("/audit/{call_id}", response_class=HTMLResponse)
    async def audit_detail(request: Request, call_id: str) -> Response:
        if signed_in(request) is None:
            return to_login(request)
        result = await api.call(request, lambda c: c.query_audit(call_id=call_id, page_size=1))
        if not result.records:
            raise HTTPException(404, "no such call")
        record = _d(result.records[0])
        request_json = record.pop("request_json", "")
        response_json = record.pop("response_json", "")
        rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in record.items())
        body = (
            f'<table class="card">{rows}</table><h2>Request</h2><pre>{e(_pretty(request_json))}</pre>'
            f"<h2>Response</h2><pre>{e(_pretty(response_json))}</pre>"
        )
        return HTMLResponse(page(f"Call {call_id}", body))

    return r


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
