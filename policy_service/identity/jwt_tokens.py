"""JWT access tokens: HS256 only, `exp` required, `iss`/`aud` checked when configured.

Claims: `sub` (user id or email), `org` (org slug the token acts in), `exp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from policy_service.errors import Unauthenticated

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class JwtSettings:
    secret: str
    issuer: str = ""
    audience: str = ""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    org_slug: str


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
    return AccessClaims(subject=sub, org_slug=org)


def encode(subject: str, org_slug: str, secret: str, ttl_seconds: int = 3600, **extra: Any) -> str:
    """Issue a token (the CLI and tests use this; production tokens come from your IdP)."""
    import time

    now = int(time.time())
    payload = {"sub": subject, "org": org_slug, "iat": now, "exp": now + ttl_seconds, **extra}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)
