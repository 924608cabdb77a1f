"""Sign-in with email and password: login, refresh, logout, and the console's variant.

One path checks every attempt: the failure limits first (counted from the audit log, so
they hold across replicas and restarts), then the password (argon2id, same cost for an
unknown email), then the account and membership. Every attempt, good or bad, is an audit
record (its source: api, console, cli or grpc, as the caller says) written before the answer; it
names the email and address, never the password or a token. Every wrong email, password,
org or a disabled account gets the same answer, so sign-in does not reveal who has an account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.audit.writer import AuditWriter
from policy_service.config import Settings
from policy_service.errors import PermissionDenied, RateLimited, Unauthenticated
from policy_service.identity import jwt_tokens, passwords, refresh_tokens, sessions
from policy_service.identity.authenticator import Authenticator
from policy_service.identity.principal import Principal
from policy_service.storage.models import AuditRequestLog, Membership, Organization, RefreshToken, User, new_id, utcnow

FAILED = "failed"
SIGN_IN_METHODS = ("auth/login", "auth/console")
_REFUSED = "wrong email, password or org, or the account is disabled"


@dataclass(frozen=True, slots=True)
class LoginSettings:
    access_ttl: int = 900
    refresh_ttl: int = 30 * 86_400
    window_seconds: int = 900
    max_failures_per_account: int = 10
    max_failures_per_address: int = 50


def login_settings(settings: Settings) -> LoginSettings:
    return LoginSettings(
        access_ttl=settings.access_token_ttl_seconds,
        refresh_ttl=settings.refresh_token_ttl_seconds,
        window_seconds=settings.login_window_seconds,
        max_failures_per_account=settings.login_max_failures_per_account,
        max_failures_per_address=settings.login_max_failures_per_address,
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    email: str
    org_slug: str
    client_address: str
    user_agent: str = ""
    # The channel it came through (the audit log's `source`): api, console, cli or grpc.
    source: str = "grpc"


@dataclass(frozen=True, slots=True)
class SignedIn:
    access: jwt_tokens.IssuedAccess
    refresh: refresh_tokens.IssuedRefresh
    principal: Principal


class Logins:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        authenticator: Authenticator,
        audit: AuditWriter,
        jwt_settings: jwt_tokens.JwtSettings,
        settings: LoginSettings,
    ) -> None:
        self._db = db
        self._auth = authenticator
        self._audit = audit
        self._jwt = jwt_settings
        self._settings = settings

    async def login(self, attempt: Attempt, password: str) -> SignedIn:
        principal = await self._check(attempt, password, "auth/login")
        async with self._db() as db, db.begin():
            refresh = refresh_tokens.start_family(db, principal.id, principal.org_id, self._settings.refresh_ttl)
        return SignedIn(self._access(principal, refresh.family_id), refresh, principal)

    async def console_session(self, attempt: Attempt, password: str, ttl_seconds: int) -> sessions.IssuedSession:
        principal = await self._check(attempt, password, "auth/console")
        if not principal.is_admin:
            raise PermissionDenied("the console needs an org admin; sign in to an org where you are one", "NOT_ADMIN")
        async with self._db() as db, db.begin():
            return await sessions.open_session(db, principal, principal.id, sessions.expiry(ttl_seconds))

    async def refresh(self, token: str, attempt: Attempt) -> SignedIn:
        async with self._db() as db, db.begin():
            rotation = await refresh_tokens.present(db, token)
            if rotation is not None and rotation.reused:
                await refresh_tokens.revoke_family(db, rotation.row.family_id)
        if rotation is None or rotation.reused:
            await self._record(attempt, "auth/refresh", "refused", "", "reused" if rotation else "invalid")
            reason = "REFRESH_REUSED" if rotation else "REFRESH_INVALID"
            raise Unauthenticated("refresh token invalid, expired, revoked or already used; sign in again", reason)
        principal = await self._auth.member(rotation.row.user_id, rotation.row.org_id)
        async with self._db() as db, db.begin():
            if principal is None:
                await refresh_tokens.revoke_family(db, rotation.row.family_id)
            else:
                successor = refresh_tokens.next_token(db, rotation.row)
        if principal is None:
            raise Unauthenticated("the account is disabled or no longer a member; sign in again", "NOT_A_MEMBER")
        return SignedIn(self._access(principal, successor.family_id), successor, principal)

    async def logout(self, refresh_token: str, bearer: str) -> None:
        """Revoke the sign-in the refresh token or the access token belongs to."""
        families: set[str] = set()
        async with self._db() as db, db.begin():
            token_id = refresh_tokens.parse_id(refresh_token.strip())
            if token_id is not None:
                row = await db.get(RefreshToken, token_id)
                if row is not None and refresh_tokens.hash_token(refresh_token.strip()) == row.token_hash:
                    families.add(row.family_id)
            if bearer.count(".") == 2:
                claims = jwt_tokens.decode(bearer, self._jwt)
                families.add(claims.session_id)
            families.discard("")
            if not families:
                raise Unauthenticated("nothing to sign out: give the refresh token or the access token", "NO_SESSION")
            for family in families:
                await refresh_tokens.revoke_family(db, family)
        self._auth.forget_cached()

    def _access(self, principal: Principal, family_id: str) -> jwt_tokens.IssuedAccess:
        ttl = self._settings.access_ttl
        return jwt_tokens.issue(principal.id, principal.org_slug, principal.role, family_id, self._jwt, ttl)

    # --- the one check ----------------------------------------------------------------
    async def _check(self, attempt: Attempt, password: str, method: str) -> Principal:
        await self._limit(attempt, method)
        user, membership = await self._candidate(attempt)
        ok = await passwords.verify(user.password_hash if user else "", password)
        principal = None
        if ok and user is not None and membership is not None and user.disabled_at is None:
            principal = await self._auth.member(user.id, membership.org_id)
        if principal is None:
            await self._record(attempt, method, FAILED, user.id if user else "", _REFUSED)
            raise Unauthenticated(f"sign-in refused: {_REFUSED}", "SIGN_IN_REFUSED")
        if user is not None and passwords.needs_rehash(user.password_hash):
            await self._rehash(user.id, password)
        await self._record(attempt, method, "ok", principal.id, "")
        return principal

    async def _candidate(self, attempt: Attempt) -> tuple[User | None, Membership | None]:
        async with self._db() as db:
            user = (await db.execute(select(User).where(func.lower(User.email) == attempt.email))).scalar_one_or_none()
            if user is None:
                return None, None
            membership = (
                await db.execute(
                    select(Membership)
                    .join(Organization, Organization.id == Membership.org_id)
                    .where(Membership.user_id == user.id, Organization.slug == attempt.org_slug)
                )
            ).scalar_one_or_none()
        return user, membership

    async def _rehash(self, user_id: str, password: str) -> None:
        new_hash = await passwords.hash_password(password)
        async with self._db() as db, db.begin():
            user = await db.get(User, user_id)
            if user is not None:
                user.password_hash = new_hash

    async def _limit(self, attempt: Attempt, method: str) -> None:
        window = utcnow() - timedelta(seconds=self._settings.window_seconds)
        failed = (
            select(func.count(), func.min(AuditRequestLog.created_at))
            .where(AuditRequestLog.method.in_(SIGN_IN_METHODS))  # from every channel alike
            .where(AuditRequestLog.status == FAILED, AuditRequestLog.created_at >= window)
        )
        async with self._db() as db:
            by_account = (await db.execute(failed.where(AuditRequestLog.actor_display == attempt.email))).one()
            by_address = (
                (await db.execute(failed.where(AuditRequestLog.client_address == attempt.client_address))).one()
                if attempt.client_address
                else (0, None)
            )
        for (count, oldest), limit, what in (
            (by_account, self._settings.max_failures_per_account, "account"),
            (by_address, self._settings.max_failures_per_address, "address"),
        ):
            if limit > 0 and count >= limit:
                wait = self._settings.window_seconds - int((utcnow() - oldest).total_seconds()) if oldest else 1
                wait = max(wait, 1)
                await self._record(attempt, method, "rate_limited", "", f"too many failed sign-ins for this {what}")
                raise RateLimited(
                    f"too many failed sign-ins for this {what}; try again in {wait} s", "SIGN_IN_LIMITED", wait
                )

    async def _record(self, attempt: Attempt, method: str, status: str, user_id: str, error: str) -> None:
        await self._audit.insert(
            {
                "call_id": new_id(),
                "source": attempt.source,
                "org_slug": attempt.org_slug[:63],
                "method": method,
                "actor_type": "user",
                "actor_id": user_id,
                "actor_display": attempt.email[:320],
                "decision": "allow" if status == "ok" else "denied",
                "request_payload": json.dumps({"email": attempt.email, "org": attempt.org_slug}),
                "status": status,
                "error": error,
                "client_address": attempt.client_address[:64],
                "user_agent": attempt.user_agent[:512],
                "created_at": utcnow(),
                "completed_at": utcnow(),
            }
        )
