"""Who is calling the REST API or console: a bearer header, or the console's session cookie.

The cookie is httpOnly, SameSite=Strict and signed (it carries the admin's credential, so
it is never readable by page scripts); state changes made with it need a CSRF token
derived from it (double submit: a header for fetch calls, a form field for forms).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request

from mcp_front.mcp.signed_state import InvalidState, StateSigner

COOKIE = "mmcp_console"
SESSION = "console_session"
SESSION_SECONDS = 8 * 3600
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True, slots=True)
class Caller:
    credential: str
    via_cookie: bool
    csrf_token: str


class ConsoleAuth:
    def __init__(self, signer: StateSigner, secure_cookies: bool) -> None:
        self._signer = signer
        self.secure_cookies = secure_cookies

    def session_cookie(self, credential: str) -> str:
        return self._signer.sign(SESSION, {"c": credential}, SESSION_SECONDS)

    def csrf_for(self, cookie: str) -> str:
        return hmac.new(b"csrf", cookie.encode(), hashlib.sha256).hexdigest()

    def caller(self, request: Request, form_csrf: str | None = None) -> Caller:
        """The caller, or 401. Cookie-authenticated state changes must carry the CSRF token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return Caller(token.strip(), via_cookie=False, csrf_token="")
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            raise HTTPException(401, "sign in with an admin API key or JWT", headers={"WWW-Authenticate": "Bearer"})
        try:
            credential = str(self._signer.verify(SESSION, cookie)["c"])
        except (InvalidState, KeyError):
            raise HTTPException(401, "session expired; sign in again") from None
        csrf = self.csrf_for(cookie)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token") or form_csrf or ""
            if not hmac.compare_digest(sent, csrf):
                raise HTTPException(403, "missing or wrong CSRF token")
        return Caller(credential, via_cookie=True, csrf_token=csrf)

    def optional_caller(self, request: Request) -> Caller | None:
        """The signed-in caller for a page view, or None (the page redirects to sign-in)."""
        try:
            return self.caller(request)
        except HTTPException:
            return None
