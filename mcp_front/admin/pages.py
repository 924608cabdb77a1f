"""HTML building blocks for the console: every value from the outside goes through `e()`.

No inline style or script: the stylesheet and scripts are files under /console/static, so
the Content-Security-Policy can forbid inline code (see headers.py)."""

from __future__ import annotations

from html import escape
from typing import Any


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, signed_in: bool = True, scripts: tuple[str, ...] = ()) -> str:
    nav = (
        '<a href="/console/approvals">Approvals</a><a href="/console/audit">Audit log</a>'
        '<a href="/console/permissions">Permissions</a><a href="/console/keys">API keys</a>'
        '<form method="post" action="/console/logout" class="inline"><button class="btn">Sign out</button></form>'
        if signed_in
        else ""
    )
    tags = "".join(f'<script src="/console/static/{e(name)}"></script>' for name in scripts)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{e(title)} · MonoMCP</title>'
        '<link rel="stylesheet" href="/console/static/console.css"></head>'
        f"<body><header><strong>MonoMCP console</strong>{nav}</header>"
        f"<main><h1>{e(title)}</h1>{body}</main>{tags}</body></html>"
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
