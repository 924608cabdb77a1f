"""Rotating refresh tokens (`mmcr_<id>_<secret>`); only the SHA-256 of the token is stored.

A sign-in starts a family; every refresh marks the presented token used and issues the
next one in the same family, which keeps the sign-in's absolute expiry. Presenting a token
that was already used means a copy exists somewhere: the whole family is revoked (and
with it every access token whose `sid` names it), so both the thief and the person sign in
again. The family id doubles as the access tokens' `sid`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.storage.models import RefreshToken, utcnow

PREFIX = "mmcr_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LEN = 16
_SECRET_LEN = 32
TOKEN_LEN = len(PREFIX) + _ID_LEN + 1 + _SECRET_LEN


@dataclass(frozen=True, slots=True)
class IssuedRefresh:
    token: str
    family_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of presenting a refresh token: the row it named, and whether it was
    already used (reuse: the caller revokes the family and refuses)."""

    row: RefreshToken
    reused: bool


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_id(token: str) -> str | None:
    if len(token) != TOKEN_LEN or not token.startswith(PREFIX):
        return None
    token_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(token_id) != _ID_LEN or any(c not in _ALPHABET for c in token_id + secret):
        return None
    return token_id


def _add(db: AsyncSession, family_id: str, user_id: str, org_id: str, expires_at: datetime) -> IssuedRefresh:
    token_id = _random(_ID_LEN)
    token = f"{PREFIX}{token_id}_{_random(_SECRET_LEN)}"
    db.add(
        RefreshToken(
            id=token_id,
            family_id=family_id,
            user_id=user_id,
            org_id=org_id,
            token_hash=hash_token(token),
            created_at=utcnow(),
            expires_at=expires_at,
        )
    )
    return IssuedRefresh(token, family_id, expires_at)


def start_family(db: AsyncSession, user_id: str, org_id: str, ttl_seconds: int) -> IssuedRefresh:
    """The first refresh token of a new sign-in."""
    return _add(db, secrets.token_hex(16), user_id, org_id, utcnow() + timedelta(seconds=ttl_seconds))


async def present(db: AsyncSession, token: str) -> Rotation | None:
    """Mark `token` used if it is live; None when it names no live token (unknown, wrong
    secret, expired or revoked). A token that was already used comes back `reused`."""
    token_id = parse_id(token.strip())
    if token_id is None:
        return None
    row = (await db.execute(select(RefreshToken).where(RefreshToken.id == token_id))).scalar_one_or_none()
    if row is None or not hmac.compare_digest(hash_token(token.strip()), row.token_hash):
        return None
    now = utcnow()
    if row.revoked_at is not None or row.expires_at <= now:
        return None
    claimed = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
        .returning(RefreshToken.id)
    )
    return Rotation(row, reused=claimed.scalar_one_or_none() is None)


def next_token(db: AsyncSession, previous: RefreshToken) -> IssuedRefresh:
    """The successor of a token just presented: same family, same absolute expiry."""
    return _add(db, previous.family_id, previous.user_id, previous.org_id, previous.expires_at)


async def revoke_family(db: AsyncSession, family_id: str) -> None:
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_for_user(db: AsyncSession, user_id: str) -> None:
    """End every sign-in of a person (password reset or change, disabling)."""
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def family_live(db: AsyncSession, family_id: str) -> bool:
    """Whether the sign-in exists and none of its tokens was revoked."""
    rows = (
        await db.execute(select(RefreshToken.revoked_at).where(RefreshToken.family_id == family_id).limit(50))
    ).all()
    return bool(rows) and all(r[0] is None for r in rows)
