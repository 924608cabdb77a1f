"""Who is calling the REST API or console: a bearer header, or the console's session cookie.

The cookie holds only an opaque console session token (`mmcs_…`) that the policy service
issued at sign-in and resolves on every use; it is httpOnly and SameSite=Strict, and
sign-out revokes it server-side. State changes made with it must come from our own
origin (Origin / Sec-Fetch-Site) and carry a CSRF token derived from it (double submit:
a header for fetch calls, a form field for forms). The sign-in form has its own
double-submit token in a short-lived cookie, so a cross-site page cannot sign a browser
in to someone else's account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.responses import Response

from mcp_front.edge.request import bearer_of
from mcp_front.mcp.signed_state import StateSigner
from policy_service.identity.sessions import looks_like_session

COOKIE = "mmcp_console"
LOGIN_COOKIE = "mmcp_console_login"
LOGIN_PATH = "/console/login"
LOGIN_FORM_SECONDS = 1800
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True, slots=True)
class Caller:
    credential: str
    via_cookie: bool
    csrf_token: str


class ConsoleAuth:
    def __init__(self, signer: StateSigner, secure_cookies: bool, allowed_origins: tuple[str, ...] = ()) -> None:
        # The signer's key is unused now that the cookie holds a server-side session; the
        # parameter stays so the front's wiring is unchanged.
        del signer
        self.secure_cookies = secure_cookies
        self._allowed_origins = tuple(o.rstrip("/") for o in allowed_origins)

    def csrf_for(self, session_token: str) -> str:
        return hmac.new(b"monomcp-console-csrf", session_token.encode(), hashlib.sha256).hexdigest()

    def caller(self, request: Request, form_csrf: str | None = None) -> Caller:
        """The caller, or 401. Cookie-authenticated state changes must be same-origin and
        carry the CSRF token."""
        token = bearer_of(request.headers.get("authorization", ""))
        if token:
            return Caller(token, via_cookie=False, csrf_token="")
        cookie = request.cookies.get(COOKIE, "")
        if not looks_like_session(cookie):
            raise HTTPException(401, "sign in with an admin API key or JWT", headers={"WWW-Authenticate": "Bearer"})
        csrf = self.csrf_for(cookie)
        if request.method not in SAFE_METHODS:
            self.require_same_origin(request)
            sent = request.headers.get("x-csrf-token") or form_csrf or ""
            if not hmac.compare_digest(sent, csrf):
                raise HTTPException(403, "missing or wrong CSRF token")
        return Caller(cookie, via_cookie=True, csrf_token=csrf)

    def optional_caller(self, request: Request) -> Caller | None:
        """The signed-in caller for a page view, or None (the page redirects to sign-in)."""
        try:
            return self.caller(request)
        except HTTPException:
            return None

    def require_same_origin(self, request: Request) -> None:
        """403 unless the browser says the request comes from our own pages. Requests
        without Origin or Sec-Fetch-Site (non-browser clients) rely on the CSRF token."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise HTTPException(403, "cross-site request refused")
        origin = request.headers.get("origin")
        if origin is None:
            return
        hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")} - {""}
        if urlsplit(origin).netloc not in hosts and origin.rstrip("/") not in self._allowed_origins:
            raise HTTPException(403, "cross-origin request refused")

    # --- the sign-in form's own double-submit token -------------------------------------
    @staticmethod
    def new_login_token() -> str:
        return secrets.token_urlsafe(32)

    def set_login_token(self, response: Response, token: str) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=LOGIN_FORM_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            path=LOGIN_PATH,
        )

    def check_login_token(self, request: Request, sent: str) -> None:
        self.require_same_origin(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(sent, expected):
            raise HTTPException(403, "the sign-in form expired or did not come from this site; reload it")

    def set_session(self, response: Response, token: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=self.secure_cookies, path="/"
        )
        response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=self.secure_cookies)
