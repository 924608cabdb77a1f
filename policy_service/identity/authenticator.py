"""Turns a bearer credential into a Principal. The one place identity is decided.

Console sessions (`mmcs_…`) are accepted only by `authenticate_admin` (the admin API the
console speaks); each use resolves the session's principal again, so revoking the key,
membership or operator token it was opened with ends it as soon as the policy version
moves (within the cache TTL while the version source is down)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import jwt
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.errors import PermissionDenied, Unauthenticated
from policy_service.identity import api_keys, external_tokens, jwt_tokens, refresh_tokens, sessions
from policy_service.identity.audiences import AudiencePolicy
from policy_service.identity.principal import OPERATOR, Principal
from policy_service.storage.models import ApiKey, Membership, Organization, Role, User, utcnow
from policy_service.versioned_cache import VersionedCache, VersionSource

_LAST_USED_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _KeyRecord:
    token_hash: str
    expires_at: datetime | None
    revoked: bool
    principal: Principal
    owner_disabled: bool = False


@dataclass(frozen=True, slots=True)
class _SessionRecord:
    secret_hash: str
    kind: str
    principal_id: str
    org_slug: str
    expires_at: datetime
    revoked: bool


class Authenticator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jwt_settings: jwt_tokens.JwtSettings,
        operator_token: str,
        cache_ttl: float,
        external: external_tokens.ExternalTokens | None = None,
        audiences: AudiencePolicy | None = None,
        version: VersionSource | None = None,
    ) -> None:
        self._sessions = sessions
        # An external identity provider's tokens (RS256/ES256 via JWKS), when configured.
        self._external = external
        self._audiences = audiences or AudiencePolicy(external.settings.audience if external else "")
        self._roles: VersionedCache[tuple[str, tuple[str, ...]], Principal | None] = VersionedCache(cache_ttl, version)
        self._jwt = jwt_settings
        self._operator_token = operator_token
        self._keys: VersionedCache[str, _KeyRecord | None] = VersionedCache(cache_ttl, version)
        self._users: VersionedCache[tuple[str, str], Principal | None] = VersionedCache(cache_ttl, version)
        self._console: VersionedCache[str, _SessionRecord | None] = VersionedCache(cache_ttl, version)
        self._sign_ins: VersionedCache[str, bool] = VersionedCache(cache_ttl, version)
        self._last_used_written: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    @property
    def jwt_settings(self) -> jwt_tokens.JwtSettings:
        return self._jwt

    def forget_cached(self) -> None:
        """Drop cached lookups (after a local revocation or membership change)."""
        self._keys.clear()
        self._users.clear()
        self._console.clear()
        self._sign_ins.clear()
        self._roles.clear()

    async def authenticate_admin(self, token: str) -> Principal:
        """Like `authenticate`, and also accepts console sessions (admin API only)."""
        token = token.strip()
        if sessions.looks_like_session(token):
            return await self._console_session(token)
        return await self.authenticate(token)

    async def authenticate(self, token: str) -> Principal:
        token = token.strip()
        if not token:
            raise Unauthenticated("missing credential", "MISSING_CREDENTIAL")
        if sessions.looks_like_session(token):
            raise Unauthenticated("a console session is accepted only by the admin API", "SESSION_NOT_ACCEPTED")
        if self._operator_token and hmac.compare_digest(token.encode(), self._operator_token.encode()):
            return OPERATOR
        if api_keys.looks_like_api_key(token):
            return await self._api_key(token)
        if token.count(".") == 2:
            if external_tokens.is_external(token):
                return await self._external_user(token)
            return await self._jwt_user(token)
        raise Unauthenticated("unrecognised credential", "UNKNOWN_CREDENTIAL")

    async def _api_key(self, token: str) -> Principal:
        key_id = api_keys.parse_key_id(token)
        if key_id is None:
            raise Unauthenticated("malformed API key", "KEY_MALFORMED")
        record = await self._keys.get_or_load(key_id, lambda: self._load_key(key_id))
        if record is None or not api_keys.matches(token, record.token_hash):
            raise Unauthenticated("invalid API key", "KEY_INVALID")
        if record.revoked:
            raise Unauthenticated("API key revoked", "KEY_REVOKED")
        if record.expires_at is not None and record.expires_at <= utcnow():
            raise Unauthenticated("API key expired", "KEY_EXPIRED")
        if record.owner_disabled:
            raise Unauthenticated("the account this API key belongs to is disabled", "KEY_OWNER_DISABLED")
        self._touch(key_id)
        return record.principal

    async def _load_key(self, key_id: str) -> _KeyRecord | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ApiKey, Organization.slug, Role.name, Role.is_admin, User.disabled_at)
                    .join(Organization, Organization.id == ApiKey.org_id)
                    .join(Role, Role.id == ApiKey.role_id)
                    .outerjoin(User, User.id == ApiKey.owner_user_id)
                    .where(ApiKey.id == key_id)
                )
            ).first()
        if row is None:
            return None
        key, org_slug, role_name, is_admin, owner_disabled_at = row
        principal = Principal(
            kind="api_key",
            id=key.id,
            org_id=key.org_id,
            org_slug=org_slug,
            role_id=key.role_id,
            role=role_name,
            is_admin=is_admin,
            display=key.name,
            person_id=key.owner_user_id or "",
        )
        revoked = key.revoked_at is not None
        return _KeyRecord(key.secret_hash, key.expires_at, revoked, principal, owner_disabled_at is not None)

    def _touch(self, key_id: str) -> None:
        """Record last use at most once a minute per key, off the request path."""
        now = time.monotonic()
        if now - self._last_used_written.get(key_id, -_LAST_USED_EVERY_SECONDS) < _LAST_USED_EVERY_SECONDS:
            return
        self._last_used_written[key_id] = now
        task = asyncio.get_running_loop().create_task(self._write_last_used(key_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_last_used(self, key_id: str) -> None:
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
        except Exception:
            pass

    async def _jwt_user(self, token: str) -> Principal:
        claims = jwt_tokens.decode(token, self._jwt)
        if claims.session_id:
            sid = claims.session_id
            if not await self._sign_ins.get_or_load(sid, lambda: self._load_sign_in(sid)):
                raise Unauthenticated("signed out (this sign-in was revoked); sign in again", "TOKEN_REVOKED")
        key = (claims.subject, claims.org_slug)
        principal = await self._users.get_or_load(key, lambda: self._load_member(*key))
        if principal is None:
            raise Unauthenticated("the token's user is not a member of its org", "NOT_A_MEMBER")
        return principal

    async def _external_claims(self, token: str) -> external_tokens.ExternalClaims:
        if self._external is None:
            raise Unauthenticated("token algorithm not allowed (no identity provider is configured)", "TOKEN_ALGORITHM")
        claims = await self._external.verify(token)
        if not await self._audiences.accepts(claims.audiences, claims.org_slug):
            raise Unauthenticated("token audience not accepted", "TOKEN_AUDIENCE")
        return claims

    async def _external_user(self, token: str) -> Principal:
        claims = await self._external_claims(token)
        key = (claims.org_slug, claims.role_candidates)
        role = await self._roles.get_or_load(key, lambda: self._load_role(*key))
        if role is None:
            raise Unauthenticated("the token names no org and role of this gateway", "TOKEN_ROLE")
        person = claims.principal_id
        return replace(role, id=person, display=claims.display, person_id=person)

    async def _single_sign_on(self, token: str) -> Principal:
        """Console single sign-on: the MonoMCP person the provider's token names by its
        verified email, as a member of the token's org (their own role, not the token's)."""
        claims = await self._external_claims(token)
        if not claims.email:
            raise PermissionDenied("the identity provider's token carries no verified email", "SSO_NO_EMAIL")
        member = await self._load_member(claims.email, claims.org_slug)
        if member is None:
            raise PermissionDenied("no MonoMCP account with this email in the token's org", "SSO_NO_ACCOUNT")
        return member

    async def _load_role(self, org_slug: str, candidates: tuple[str, ...]) -> Principal | None:
        """The first candidate role that exists in the org, as a principal template."""
        if not candidates:
            return None
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Organization, Role)
                    .join(Role, Role.org_id == Organization.id)
                    .where(Organization.slug == org_slug, Role.name.in_(candidates))
                )
            ).all()
        by_name = {role.name: (org, role) for org, role in rows}
        for name in candidates:
            if name in by_name:
                org, role = by_name[name]
                return Principal("external", "", org.id, org.slug, role.id, role.name, role.is_admin, "")
        return None

    async def _load_sign_in(self, family_id: str) -> bool:
        async with self._sessions() as db:
            return await refresh_tokens.family_live(db, family_id)

    async def member(self, user_id: str, org_id: str) -> Principal | None:
        """The person as a member of the org now (None: not a member, or disabled)."""
        return await self._load_member_where(User.id == user_id, Organization.id == org_id)

    async def _load_member(self, subject: str, org_slug: str) -> Principal | None:
        return await self._load_member_where(
            or_(User.id == subject, User.email == subject), Organization.slug == org_slug
        )

    async def _load_member_where(self, *conditions: ColumnElement[bool]) -> Principal | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(User, Organization, Role)
                    .join(Membership, Membership.user_id == User.id)
                    .join(Organization, Organization.id == Membership.org_id)
                    .join(Role, Role.id == Membership.role_id)
                    .where(User.disabled_at.is_(None), *conditions)
                )
            ).first()
        if row is None:
            return None
        user, org, role = row
        return Principal(
            kind="user",
            id=user.id,
            org_id=org.id,
            org_slug=org.slug,
            role_id=role.id,
            role=role.name,
            is_admin=role.is_admin,
            display=user.email,
            person_id=user.id,
        )

    # --- console sessions ---------------------------------------------------------------
    async def open_console_session(self, token: str, ttl_seconds: int = 0) -> sessions.IssuedSession:
        """Exchange an admin credential (never another session) for a console session."""
        token = token.strip()
        if sessions.looks_like_session(token):
            raise PermissionDenied("sign in with an API key or JWT, not a console session", "SESSION_FROM_SESSION")
        external = external_tokens.is_external(token)
        principal = await (self._single_sign_on(token) if external else self.authenticate(token))
        if not principal.is_admin:
            raise PermissionDenied("the console needs an org admin credential", "NOT_ADMIN")
        cap: datetime | None = None
        if principal.kind == "api_key":
            record = await self._keys.get_or_load(principal.id, lambda: self._load_key(principal.id))
            cap = record.expires_at if record is not None else None
        elif principal.kind == "user":
            claims = jwt.decode(token, options={"verify_signature": False})
            cap = datetime.fromtimestamp(int(claims["exp"]), UTC)
        principal_id = self._operator_fingerprint() if principal.is_operator else principal.id
        async with self._sessions() as db, db.begin():
            issued = await sessions.open_session(db, principal, principal_id, sessions.expiry(ttl_seconds, cap))
        return issued

    async def end_console_session(self, token: str) -> bool:
        """Revoke a console session (logout); False when the token names none."""
        async with self._sessions() as db, db.begin():
            ended = await sessions.revoke(db, token.strip())
        self._console.clear()
        return ended

    async def _console_session(self, token: str) -> Principal:
        session_id = sessions.parse_session_id(token)
        if session_id is None:
            raise Unauthenticated("malformed console session", "SESSION_MALFORMED")
        record = await self._console.get_or_load(session_id, lambda: self._load_console_session(session_id))
        if record is None or not sessions.matches(token, record.secret_hash):
            raise Unauthenticated("invalid console session", "SESSION_INVALID")
        if record.revoked:
            raise Unauthenticated("signed out; sign in again", "SESSION_REVOKED")
        if record.expires_at <= utcnow():
            raise Unauthenticated("session expired; sign in again", "SESSION_EXPIRED")
        principal = await self._session_principal(record)
        if principal is None or not principal.is_admin:
            raise Unauthenticated("the credential this session was opened with is no longer valid", "SESSION_ENDED")
        return principal

    async def _session_principal(self, record: _SessionRecord) -> Principal | None:
        """The session's principal as it stands now (revoked or expired key: None)."""
        if record.kind == "api_key":
            key = await self._keys.get_or_load(record.principal_id, lambda: self._load_key(record.principal_id))
            if key is None or key.revoked or (key.expires_at is not None and key.expires_at <= utcnow()):
                return None
            return key.principal
        if record.kind == "user":
            member = (record.principal_id, record.org_slug)
            return await self._users.get_or_load(member, lambda: self._load_member(*member))
        if record.kind == "operator" and self._operator_token:
            if hmac.compare_digest(record.principal_id, self._operator_fingerprint()):
                return OPERATOR
        return None

    async def _load_console_session(self, session_id: str) -> _SessionRecord | None:
        async with self._sessions() as db:
            row = await sessions.load(db, session_id)
        if row is None:
            return None
        return _SessionRecord(
            row.secret_hash,
            row.principal_kind,
            row.principal_id,
            row.org_slug,
            row.expires_at,
            row.revoked_at is not None,
        )

    def _operator_fingerprint(self) -> str:
        """Stands for the operator token in a session row: a new token ends old sessions."""
        return hashlib.sha256(self._operator_token.encode()).hexdigest()
