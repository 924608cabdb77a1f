"""Security headers on every console and REST API response.

The console's pages load their one stylesheet and one script from /console/static, so
the Content-Security-Policy allows no inline code at all; `frame-ancestors 'none'` stops
clickjacking of the approve buttons. Referrer-Policy is same-origin, not no-referrer:
with no-referrer Chromium sends `Origin: null` on our own form posts, which the
same-origin check must refuse. Responses can show secrets (a new key, approval
arguments, audit payloads), so nothing is stored by browsers or proxies. The Swagger UI
page (/docs) loads its assets from this server (no CDN: it works offline) and has one
inline script: it gets its own policy, allowing exactly that script (by hash).
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str) -> str:
    """The policy for the Swagger UI page `html`: our own assets and its inline scripts, by hash."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


_FIXED = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_OURS = {name for name, _ in _FIXED}


class SecurityHeaders:
    """ASGI middleware: adds the headers above; a route's own CSP wins over the default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in _OURS]
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", CONSOLE_POLICY.encode()))
                message["headers"] = headers + _FIXED
            await send(message)

        await self.app(scope, receive, send_with_headers)
