"""HTML building blocks for the console: every value from the outside goes through `e()`."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#cfe0ff;text-decoration:none}header strong{margin-right:1rem}
main{padding:1.2rem;max-width:1200px;margin:auto}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.45rem .6rem;border-bottom:1px solid #e3e6ea;
text-align:left;vertical-align:top}th{background:#eef1f5}
pre{background:#fff;border:1px solid #e3e6ea;padding:.8rem;overflow:auto;white-space:pre-wrap;word-break:break-all}
.btn{padding:.35rem .8rem;border:0;border-radius:4px;cursor:pointer}.ok{background:#1f7a3f;color:#fff}
.no{background:#a32020;color:#fff}.muted{color:#667}.card{background:#fff;padding:1rem;border:1px solid #e3e6ea;
margin-bottom:1rem}input,select{padding:.3rem}form.inline{display:inline-flex;gap:.3rem;align-items:center}
.status{font-weight:600}.error{background:#fde8e8;border:1px solid #f5b5b5;padding:.6rem}
@media (max-width:700px){td,th{display:block}thead{display:none}}
"""


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, signed_in: bool = True) -> str:
    nav = (
        '<a href="/console/approvals">Approvals</a><a href="/console/audit">Audit log</a>'
        '<a href="/console/permissions">Permissions</a><a href="/console/keys">API keys</a>'
        '<form method="post" action="/console/logout" class="inline"><button class="btn">Sign out</button></form>'
        if signed_in
        else ""
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{e(title)} · MonoMCP</title>'
        f"<style>{STYLE}</style></head><body><header><strong>MonoMCP console</strong>{nav}</header>"
        f"<main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def decide_forms(approval_id: str, csrf: str) -> str:
    aid = e(approval_id)
    return (
        f'<form method="post" action="/console/approvals/{aid}/decide" class="inline">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}"><input type="hidden" name="action" value="approve">'
        f'<button class="btn ok">Approve</button></form> '
        f'<form method="post" action="/console/approvals/{aid}/decide" class="inline">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}"><input type="hidden" name="action" value="deny">'
        f'<input name="reason" placeholder="Reason (required)" required aria-label="Reason for denial">'
        f'<button class="btn no">Deny</button></form>'
    )


def table(headers: list[str], rows: list[list[str]], body_id: str = "") -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    ident = f' id="{e(body_id)}"' if body_id else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody{ident}>{body}</tbody></table>"
