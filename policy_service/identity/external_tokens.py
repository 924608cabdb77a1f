"""Access tokens from an external identity provider (OIDC/OAuth), verified against its
JWKS: RS256/ES256 only, `kid` required, `exp`, `iss` and `aud` required and checked.

The token's org and role come from configured claims (`MONOMCP_OIDC_ORG_CLAIM`,
`MONOMCP_OIDC_ROLE_CLAIM`, optionally through `MONOMCP_OIDC_ROLE_MAP` from the provider's
group names to roles); the authenticator checks that both exist, and which audiences count
(identity/audiences.py: the configured audience, and in OAuth resource-server mode this
gateway's endpoint URLs, RFC 8707).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import jwt

from policy_service.errors import Unauthenticated
from policy_service.identity.jwks import JwksCache

ASYMMETRIC = frozenset({"RS256", "ES256"})
# Org slugs and role names as MonoMCP spells them; anything else never reaches the database.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True, slots=True)
class ExternalIdpSettings:
    issuer: str
    jwks_url: str
    audience: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    org_claim: str = "org"
    fixed_org: str = ""
    role_claim: str = "role"
    # (provider value, role) pairs in priority order; empty = the claim names the role itself.
    role_map: tuple[tuple[str, str], ...] = ()
    default_role: str = ""
    jwks_max_age: float = 300.0
    jwks_min_refresh: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.jwks_url)


def parse_role_map(text: str) -> tuple[tuple[str, str], ...]:
    """`group=role,group2=role2` → pairs; raises ValueError on an entry without `=`."""
    pairs: list[tuple[str, str]] = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        group, sep, role = entry.partition("=")
        if not sep or not group.strip() or not role.strip():
            raise ValueError(f"MONOMCP_OIDC_ROLE_MAP: {entry!r} is not group=role")
        pairs.append((group.strip(), role.strip()))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class ExternalClaims:
    subject: str
    org_slug: str
    role_candidates: tuple[str, ...]
    display: str
    expires_at: int
    audiences: tuple[str, ...] = ()
    # The `email` claim, unless the provider says it is not verified ('' then).
    email: str = ""

    @property
    def principal_id(self) -> str:
        """Stable per provider subject (fits the audit's actor id)."""
        return "ext_" + hashlib.sha256(self.subject.encode()).hexdigest()[:32]


def is_external(token: str) -> bool:
    """Signed with an asymmetric algorithm: a provider's token, never one of ours (HS256)."""
    try:
        return jwt.get_unverified_header(token).get("alg") in ASYMMETRIC
    except jwt.InvalidTokenError:
        return False


class ExternalTokens:
    def __init__(self, settings: ExternalIdpSettings, jwks: JwksCache | None = None) -> None:
        self.settings = settings
        self._jwks = jwks or JwksCache(settings.jwks_url, settings.jwks_max_age, settings.jwks_min_refresh)

    async def verify(self, token: str) -> ExternalClaims:
        """Signature, algorithm, issuer and expiry checked; the audience is the caller's to judge."""
        settings = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {type(exc).__name__}", "TOKEN_INVALID") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in settings.algorithms or alg not in ASYMMETRIC:
            raise Unauthenticated("token algorithm not allowed", "TOKEN_ALGORITHM")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("token names no signing key (`kid`)", "TOKEN_KEY")
        key = await self._jwks.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=settings.issuer,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", "TOKEN_EXPIRED") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("token issuer not accepted", "TOKEN_ISSUER") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {type(exc).__name__}", "TOKEN_INVALID") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not audiences or not all(isinstance(a, str) for a in audiences):
            raise Unauthenticated("token audience malformed", "TOKEN_AUDIENCE")
        return self._mapped(claims, tuple(audiences))

    def _mapped(self, claims: dict[str, Any], audiences: tuple[str, ...]) -> ExternalClaims:
        settings = self.settings
        org = settings.fixed_org or claims.get(settings.org_claim)
        if not isinstance(org, str) or not _NAME.fullmatch(org):
            raise Unauthenticated(f"token lacks the `{settings.org_claim}` claim", "TOKEN_CLAIMS")
        raw = claims.get(settings.role_claim)
        values = [v for v in (raw if isinstance(raw, list) else [raw]) if isinstance(v, str) and v]
        if settings.role_map:
            candidates = [role for group, role in settings.role_map if group in values]
        else:
            candidates = values
        if settings.default_role:
            candidates.append(settings.default_role)
        candidates = [c for c in candidates if _NAME.fullmatch(c)]
        subject = f"{settings.issuer}#{claims['sub']}"
        display = claims.get("email") or claims.get("preferred_username") or str(claims["sub"])
        email = claims.get("email")
        verified = (
            isinstance(email, str)
            and "@" in email
            and email.isprintable()
            and claims.get("email_verified", True) is not False
        )
        return ExternalClaims(
            subject,
            org,
            tuple(candidates),
            str(display)[:200],
            int(claims["exp"]),
            audiences,
            email.strip().lower()[:320] if verified and isinstance(email, str) else "",
        )
