"""Console sessions: an opaque, server-side sign-in the web console holds in a cookie.

Signing in exchanges an admin credential for `mmcs_<id>_<secret>`; only the SHA-256 of
the whole token is stored (like API keys: the secret has ~190 bits of entropy). The row
names the principal, which the authenticator resolves again on every use, so revoking
the key (or the membership) ends the session too. Logout revokes the row; sessions end
at an absolute expiry however active they are.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.identity.principal import Principal
from policy_service.storage.models import ConsoleSession, utcnow

PREFIX = "mmcs_"
# Absolute lifetime of a console session, however active.
MAX_SECONDS = 12 * 3600
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LEN = 16
_SECRET_LEN = 32
TOKEN_LEN = len(PREFIX) + _ID_LEN + 1 + _SECRET_LEN


@dataclass(frozen=True, slots=True)
class IssuedSession:
    session_id: str
    token: str
    expires_at: datetime
    principal: Principal


def looks_like_session(token: str) -> bool:
    return token.startswith(PREFIX)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def parse_session_id(token: str) -> str | None:
    """The session id of a well-formed token, or None."""
    if len(token) != TOKEN_LEN or not token.startswith(PREFIX):
        return None
    session_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(session_id) != _ID_LEN or len(secret) != _SECRET_LEN:
        return None
    if any(c not in _ALPHABET for c in session_id + secret):
        return None
    return session_id


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


async def open_session(
    db: AsyncSession, principal: Principal, principal_id: str, expires_at: datetime
) -> IssuedSession:
    """Store a new session for `principal` (as `principal_id`) and return its token once."""
    session_id = _random(_ID_LEN)
    token = f"{PREFIX}{session_id}_{_random(_SECRET_LEN)}"
    db.add(
        ConsoleSession(
            id=session_id,
            secret_hash=hash_token(token),
            principal_kind=principal.kind,
            principal_id=principal_id,
            org_slug=principal.org_slug,
            created_at=utcnow(),
            expires_at=expires_at,
        )
    )
    return IssuedSession(session_id, token, expires_at, principal)


def expiry(requested_seconds: int, *caps: datetime | None) -> datetime:
    """When a new session ends: the requested lifetime, at most MAX_SECONDS and never
    after the credential it was opened with (`caps`)."""
    seconds = requested_seconds if 0 < requested_seconds < MAX_SECONDS else MAX_SECONDS
    return min([utcnow() + timedelta(seconds=seconds), *(c for c in caps if c is not None)])


async def load(db: AsyncSession, session_id: str) -> ConsoleSession | None:
    return (await db.execute(select(ConsoleSession).where(ConsoleSession.id == session_id))).scalar_one_or_none()


async def revoke(db: AsyncSession, token: str) -> bool:
    """Revoke the session `token` names; False when it names none."""
    session_id = parse_session_id(token)
    row = await load(db, session_id) if session_id else None
    if row is None or not matches(token, row.secret_hash):
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return True
