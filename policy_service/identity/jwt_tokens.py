"""JWT access tokens: HS256 only, `exp` required, `iss`/`aud` checked when configured.

Claims: `sub` (user id or email), `org` (org slug the token acts in), `exp`. Tokens the
policy service issues at sign-in (`issue`) also carry `role`, `iat`, `iss`, `aud`, `jti` and
`sid`, the sign-in (refresh-token family) they belong to: signing out or a detected refresh
reuse revokes the family, and its access tokens with it. The role claim is informational:
the role always comes from the person's membership at the time of the request.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from policy_service.errors import Unauthenticated

ALGORITHM = "HS256"
DEFAULT_ISSUER = "monomcp"
DEFAULT_AUDIENCE = "monomcp"


@dataclass(frozen=True, slots=True)
class JwtSettings:
    secret: str
    issuer: str = ""
    audience: str = ""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    org_slug: str
    # The sign-in this token belongs to ('' for tokens minted elsewhere with JWT_SECRET).
    session_id: str = ""
    expires_at: int = 0


def decode(token: str, settings: JwtSettings) -> AccessClaims:
    if not settings.secret:
        raise Unauthenticated("JWTs are not accepted: no JWT_SECRET configured", "JWT_DISABLED")
    options: Any = {"require": ["exp", "sub"], "verify_aud": bool(settings.audience)}
    try:
        claims = jwt.decode(
            token,
            settings.secret,
            algorithms=[ALGORITHM],
            options=options,
            audience=settings.audience or None,
            issuer=settings.issuer or None,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired", "TOKEN_EXPIRED") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise Unauthenticated("token algorithm not allowed", "TOKEN_ALGORITHM") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {type(exc).__name__}", "TOKEN_INVALID") from exc
    org = claims.get("org")
    sub = claims.get("sub")
    if not isinstance(org, str) or not org or not isinstance(sub, str) or not sub:
        raise Unauthenticated("token lacks the `org` or `sub` claim", "TOKEN_CLAIMS")
    sid = claims.get("sid", "")
    if not isinstance(sid, str):
        raise Unauthenticated("token has a malformed `sid` claim", "TOKEN_CLAIMS")
    return AccessClaims(subject=sub, org_slug=org, session_id=sid, expires_at=int(claims["exp"]))


@dataclass(frozen=True, slots=True)
class IssuedAccess:
    token: str
    jti: str
    expires_in: int


def issue(user_id: str, org_slug: str, role: str, session_id: str, settings: JwtSettings, ttl: int) -> IssuedAccess:
    """A signed access token for a signed-in person (see the module docstring for claims)."""
    if not settings.secret:
        raise Unauthenticated("sign-in needs JWT_SECRET to be configured", "JWT_DISABLED")
    now = int(time.time())
    jti = secrets.token_hex(16)
    payload = {
        "sub": user_id,
        "org": org_slug,
        "role": role,
        "iat": now,
        "exp": now + ttl,
        "iss": settings.issuer or DEFAULT_ISSUER,
        "aud": settings.audience or DEFAULT_AUDIENCE,
        "jti": jti,
        "sid": session_id,
    }
    return IssuedAccess(jwt.encode(payload, settings.secret, algorithm=ALGORITHM), jti, ttl)


def encode(subject: str, org_slug: str, secret: str, ttl_seconds: int = 3600, **extra: Any) -> str:
    """Mint a token outside sign-in (tests, scripts holding JWT_SECRET)."""
    now = int(time.time())
    payload = {"sub": subject, "org": org_slug, "iat": now, "exp": now + ttl_seconds, **extra}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)
